//! Just enough HTTP/1.1 for azure-cli's `requests` sessions: one request at a time per
//! connection, keep-alive, `Content-Length` or chunked bodies, and JSON responses with a
//! `Content-Length`. Header parsing is httparse's.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted: az's bodies are a few kilobytes.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    /// The query string without `?` (may be empty).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded value of a query parameter (names compare case-insensitively, as ARM's do).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k).eq_ignore_ascii_case(name)).then(|| percent_decode(v))
        })
    }

    /// The path with the query, as the invocation log records it.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// A response without a body: ARM's 204 to a `HEAD` that found the resource, 404 to one
    /// that did not.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes (and `+` nowhere: ARM paths and az's queries do not use it for space
/// except in form bodies, which [`form_decode`] handles).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes an `application/x-www-form-urlencoded` body into pairs.
pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What reading the next request gave.
pub enum Next {
    Request(Request),
    /// The client closed the connection between requests.
    Closed,
    /// A request that is not HTTP we understand: answer 400 and close.
    Bad(String),
}

/// Reads one request. I/O errors (a reset, a read timeout, a failed TLS handshake) end the
/// connection.
pub fn read_request<R: Read>(reader: &mut BufReader<R>) -> io::Result<Next> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return Ok(if head.is_empty() {
                Next::Closed
            } else {
                Next::Bad("connection closed inside the request head".into())
            });
        }
        // Tolerate blank lines before a request line (RFC 9112 section 2.2).
        if before == 0 && (head == b"\r\n" || head == b"\n") {
            head.clear();
            continue;
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            return Ok(Next::Bad("request head too large".into()));
        }
    }
    let mut header_buf = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut header_buf);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(Next::Bad("incomplete request head".into())),
        Err(e) => return Ok(Next::Bad(format!("bad request head: {e}"))),
    }
    let method = parsed.method.unwrap_or_default().to_string();
    let target = parsed.path.unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let mut request = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    if chunked {
        match read_chunked(reader)? {
            Some(body) => request.body = body,
            None => return Ok(Next::Bad("bad chunked body".into())),
        }
    } else if let Some(len) = request.header("content-length") {
        let Ok(len) = len.parse::<usize>() else {
            return Ok(Next::Bad("bad Content-Length".into()));
        };
        if len > MAX_BODY {
            return Ok(Next::Bad("request body too large".into()));
        }
        request.body = vec![0; len];
        reader.read_exact(&mut request.body)?;
    }
    Ok(Next::Request(request))
}

fn read_chunked<R: Read>(reader: &mut BufReader<R>) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return Ok(None);
        };
        if body.len() + size > MAX_BODY {
            return Ok(None);
        }
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(Some(body));
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes a response with its `Content-Length` (none on a 204, which never has a body);
/// `close` adds `Connection: close`. The answer to a `HEAD` (`head`) is the head alone: its
/// `Content-Length` is the body's, which is not sent (RFC 9110, section 9.3.2), so the next
/// request on the connection is not read from a body the client never expected.
pub fn write_response<W: Write>(
    out: &mut W,
    response: &Response,
    close: bool,
    head: bool,
) -> io::Result<()> {
    let mut text = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (k, v) in &response.headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if response.status != 204 {
        text.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        text.push_str("Connection: close\r\n");
    }
    text.push_str("\r\n");
    out.write_all(text.as_bytes())?;
    if !head && response.status != 204 {
        out.write_all(&response.body)?;
    }
    out.flush()
}

/// What the handler decides for one request.
pub enum Reply {
    /// Answer, and keep the connection open unless the client asked to close it.
    Send(Response),
    /// Close the connection without answering (a crash after the change was made).
    Drop,
}

/// Serves requests on one connection until the client closes it, a read fails or the handler
/// drops it.
pub fn serve_connection<S: Read + Write>(
    stream: S,
    mut handle: impl FnMut(Request) -> Reply,
) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        match read_request(&mut reader)? {
            Next::Closed => return Ok(()),
            Next::Bad(why) => {
                let body = serde_json::json!({"error": {"code": "BadRequest", "message": why}});
                write_response(reader.get_mut(), &Response::json(400, &body), true, false)?;
                return Ok(());
            }
            Next::Request(request) => {
                let close = request.wants_close();
                let head = request.method.eq_ignore_ascii_case("HEAD");
                match handle(request) {
                    Reply::Send(response) => {
                        write_response(reader.get_mut(), &response, close, head)?
                    }
                    Reply::Drop => return Ok(()),
                }
                if close {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Next {
        read_request(&mut BufReader::new(raw.as_bytes())).unwrap()
    }

    #[test]
    fn reads_requests_with_and_without_bodies() {
        let raw = "GET /subscriptions?api-version=2022-12-01 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n";
        let Next::Request(r) = parse(raw) else {
            panic!("not parsed")
        };
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("GET", "/subscriptions", "api-version=2022-12-01")
        );
        assert_eq!(r.header("AUTHORIZATION"), Some("Bearer t"));
        assert_eq!(r.query_param("API-Version").as_deref(), Some("2022-12-01"));

        let raw = "PATCH /a HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        let Next::Request(r) = parse(raw) else {
            panic!("not parsed")
        };
        assert_eq!(r.body, b"{\"a\":1}");

        let raw = "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        let Next::Request(r) = parse(raw) else {
            panic!("not parsed")
        };
        assert_eq!(r.body, b"{\"a\":1}");

        assert!(matches!(parse(""), Next::Closed));
        assert!(matches!(parse("NOT HTTP\r\n\r\n"), Next::Bad(_)));
    }

    #[test]
    fn decodes_paths_and_forms() {
        assert_eq!(percent_decode("-rg.ops%281%29"), "-rg.ops(1)");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            form_decode(b"grant_type=client_credentials&scope=https%3A%2F%2Fm%2F.default&x=a+b"),
            vec![
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("scope".to_string(), "https://m/.default".to_string()),
                ("x".to_string(), "a b".to_string()),
            ]
        );
    }

    /// A connection: what the client sent, and what the server wrote back.
    struct Pipe {
        input: std::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Pipe {
        fn new(input: &str) -> Pipe {
            Pipe {
                input: std::io::Cursor::new(input.as_bytes().to_vec()),
                output: Vec::new(),
            }
        }
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn keep_alive_serves_several_requests_then_honours_close() {
        let input = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        let mut pipe = Pipe::new(input);
        let mut seen = Vec::new();
        serve_connection(&mut pipe, |r| {
            seen.push(r.path.clone());
            Reply::Send(Response::json(200, &serde_json::json!({"p": r.path})))
        })
        .unwrap();
        assert_eq!(
            seen,
            ["/a", "/b"],
            "nothing is read after Connection: close"
        );
        let text = String::from_utf8(pipe.output).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2);
        assert!(text.contains("Content-Length: 10\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n{\"p\":\"/b\"}"));
    }

    #[test]
    fn a_head_is_answered_without_a_body_and_a_204_without_a_length() {
        let input = "HEAD /g HTTP/1.1\r\n\r\nHEAD /missing HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut pipe = Pipe::new(input);
        serve_connection(&mut pipe, |r| {
            Reply::Send(match r.path.as_str() {
                "/g" => Response::empty(204),
                "/missing" => Response::json(404, &serde_json::json!({"error": {"code": "x"}})),
                _ => Response::json(200, &serde_json::json!({"p": r.path})),
            })
        })
        .unwrap();
        let text = String::from_utf8(pipe.output).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 204 No Content\r\n\r\n\
             HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 22\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{\"p\":\"/b\"}"
        );
    }
}
