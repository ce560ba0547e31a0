//! Outgoing mail for invitations and password resets, through the SMTP server of `[server.smtp]`.

use leannodes_config::{Smtp, SmtpTls};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address is not valid.
    #[error("invalid mail address `{address}`: {source}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: lettre::address::AddressError,
    },
    /// The message could not be built.
    #[error("cannot build the mail: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP server refused or could not be reached.
    #[error("the SMTP server did not take the mail: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends mail.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `[server.smtp]`.
    pub fn new(smtp: &Smtp) -> Result<Mailer, MailError> {
        let from: Mailbox = smtp.from.parse().map_err(|source| MailError::Address { address: smtp.from.clone(), source })?;
        let builder = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        };
        let mut builder = builder.port(smtp.port).timeout(Some(std::time::Duration::from_secs(10)));
        if let Some((user, password)) = &smtp.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        Ok(Mailer { transport: builder.build(), from })
    }

    async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|source| MailError::Address { address: to.to_string(), source })?;
        let message = Message::builder().from(self.from.clone()).to(to).subject(subject).header(ContentType::TEXT_PLAIN).body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }

    /// Mails an invitation link.
    pub async fn send_invitation(&self, to: &str, url: &str, invited_by: &str, expires: &str) -> Result<(), MailError> {
        let body = format!(
            "{invited_by} invited you to LeanNodes.\n\nOpen this link to choose your name and password (it works once, until {expires}):\n\n{url}\n\nIf you did not expect this, ignore this mail.\n"
        );
        self.send(to, "Your invitation to LeanNodes", body).await
    }

    /// Mails a password-reset link.
    pub async fn send_reset(&self, to: &str, url: &str) -> Result<(), MailError> {
        let body = format!(
            "Someone asked to reset the password of your LeanNodes account.\n\nOpen this link to set a new password (it works once, for one hour):\n\n{url}\n\nIf it was not you, ignore this mail; your password stays as it is.\n"
        );
        self.send(to, "Reset your LeanNodes password", body).await
    }
}
