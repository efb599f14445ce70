//! Why a call was refused: [`Error`].

use core::fmt;

use super::config::ConfigError;

/// Why a call was refused: misuse of the API, never bytes from the
/// network (a rejected datagram or frame is counted in
/// [`Stats::rejected`](crate::Stats::rejected) and the call returns `Ok`).
///
/// Every refusal leaves the member as it was: no protocol state changes,
/// nothing is sent; only the latest time seen advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// [`Swim::new`](crate::Swim::new): the configuration is invalid. No
    /// member was built.
    Config(ConfigError),
    /// Metadata longer than `max_meta_len` (at [`Swim::new`](crate::Swim::new)
    /// or [`Input::SetMeta`](crate::Input::SetMeta)). The metadata in force is unchanged.
    MetaTooLong,
    /// [`Input::Join`](crate::Input::Join) with no seed. No join was started.
    NoSeeds,
    /// The member is leaving or has left; it takes no more commands. The
    /// command was ignored.
    Leaving,
    /// [`Input::Message`](crate::Input::Message) to a name that is not a live member. Nothing was
    /// queued or sent.
    UnknownMember,
    /// A payload or state larger than its configured limit. Nothing was
    /// queued, sent or stored.
    TooLarge,
    /// Every stream slot (`max_streams`) is in use. No stream was opened;
    /// the message was not sent.
    Busy,
    /// A keyring change was refused. The keyring is unchanged.
    #[cfg(feature = "encryption")]
    Keyring(crate::wire::keyring::KeyringError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::MetaTooLong => f.write_str("metadata longer than max_meta_len"),
            Error::NoSeeds => f.write_str("join needs at least one seed"),
            Error::Leaving => f.write_str("the member is leaving or has left"),
            Error::UnknownMember => f.write_str("no live member of that name"),
            Error::TooLarge => f.write_str("payload larger than its configured limit"),
            Error::Busy => f.write_str("every stream slot is in use"),
            #[cfg(feature = "encryption")]
            Error::Keyring(e) => write!(f, "keyring change refused: {e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}
