//! The errors the CLI face reports, printed in az's exact layouts with az's exit codes
//! (0 ok, 1 error, 2 bad arguments, 3 not found).

/// The footer az's parser prints under a usage error (its offline "recommendations").
const REFERENCE_FOOTER: &str =
    "\nhttps://aka.ms/cli_ref\nRead more about the command in reference docs\n";

/// Why an az command failed: what az prints on stderr and the exit code it ends with. The ARM
/// face answers the same errors as ARM error bodies (see `serve::routes::error_response`).
#[derive(Debug, Clone, PartialEq)]
pub enum CommandError {
    /// An error the service answered: azure-core prints `(Code) Message`, `Code:`, `Message:`.
    Service {
        code: String,
        message: String,
        exit: i32,
    },
    /// An error az raised itself (parser, validator, profile): `ERROR: message` plus any
    /// recommendation lines az prints under it.
    Client {
        message: String,
        trailer: String,
        exit: i32,
    },
}

impl CommandError {
    /// HTTP 404 from ARM: az maps it to ResourceNotFoundError, exit code 3.
    pub fn not_found(code: &str, message: impl Into<String>) -> CommandError {
        CommandError::Service {
            code: code.into(),
            message: message.into(),
            exit: 3,
        }
    }

    /// Any other service error (4xx/5xx, failed long-running operation): exit code 1.
    pub fn service(code: &str, message: impl Into<String>) -> CommandError {
        CommandError::Service {
            code: code.into(),
            message: message.into(),
            exit: 1,
        }
    }

    /// A client-side failure raised while the command runs (CLIError): exit code 1.
    pub fn client(message: impl Into<String>) -> CommandError {
        CommandError::Client {
            message: message.into(),
            trailer: String::new(),
            exit: 1,
        }
    }

    /// A validator's rejection (`parser.validation_error`): exit code 2, no footer.
    pub fn validation(message: impl Into<String>) -> CommandError {
        CommandError::Client {
            message: message.into(),
            trailer: String::new(),
            exit: 2,
        }
    }

    /// An argparse error (`parser.error`): exit code 2 with az's reference footer.
    pub fn usage(message: impl Into<String>) -> CommandError {
        CommandError::Client {
            message: message.into(),
            trailer: REFERENCE_FOOTER.into(),
            exit: 2,
        }
    }

    /// A usage error of a command's own parser: az prints the chosen help examples (if the
    /// command has any) above its reference footer.
    pub fn usage_with_examples(
        message: impl Into<String>,
        examples: &[(&str, &str)],
    ) -> CommandError {
        if examples.is_empty() {
            return CommandError::usage(message);
        }
        let mut trailer = String::from("\nExamples from command's help:\n");
        for (command, description) in examples {
            trailer.push_str(&format!("{command}\n{description}\n\n"));
        }
        trailer.push_str(REFERENCE_FOOTER.trim_start_matches('\n'));
        CommandError::Client {
            message: message.into(),
            trailer,
            exit: 2,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Service { exit, .. } | CommandError::Client { exit, .. } => *exit,
        }
    }

    /// The exact stderr text az prints for this error.
    pub fn render(&self) -> String {
        match self {
            CommandError::Service { code, message, .. } => {
                format!("ERROR: ({code}) {message}\nCode: {code}\nMessage: {message}\n")
            }
            CommandError::Client {
                message, trailer, ..
            } => format!("ERROR: {message}\n{trailer}"),
        }
    }
}

/// ARM's wording when a top-level resource is missing from an existing resource group.
pub fn arm_resource_not_found(resource_type: &str, name: &str, group: &str) -> CommandError {
    CommandError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{resource_type}/{name}' under resource group '{group}' was not found. \
             For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// ARM's wording when the parent of a nested resource (a SQL server) does not exist.
pub fn parent_not_found(parent: &str) -> CommandError {
    CommandError::not_found(
        "ParentResourceNotFound",
        format!(
            "Can not perform requested operation on nested resource. Parent resource '{parent}' not found."
        ),
    )
}

/// The SQL resource provider's own 404 wording for nested resources.
pub fn sql_not_found(resource_type: &str, name: &str) -> CommandError {
    CommandError::not_found(
        "ResourceNotFound",
        format!(
            "The requested resource of type '{resource_type}' with name '{name}' was not found."
        ),
    )
}

pub fn group_not_found(group: &str) -> CommandError {
    CommandError::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{group}' could not be found."),
    )
}

/// A failure of azsim itself (store, I/O): reported like az reports an unexpected error.
impl From<anyhow::Error> for CommandError {
    fn from(e: anyhow::Error) -> CommandError {
        CommandError::client(format!("azsim: {e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_layout_is_three_lines() {
        let e = CommandError::not_found("ResourceNotFound", "gone");
        assert_eq!(
            e.render(),
            "ERROR: (ResourceNotFound) gone\nCode: ResourceNotFound\nMessage: gone\n"
        );
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn usage_error_has_footer() {
        let e = CommandError::usage("unrecognized arguments: --bogus=1");
        assert_eq!(
            e.render(),
            "ERROR: unrecognized arguments: --bogus=1\n\nhttps://aka.ms/cli_ref\nRead more about the command in reference docs\n"
        );
        assert_eq!(e.exit_code(), 2);
    }
}
