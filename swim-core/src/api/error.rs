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
    /// or [`Input::SetMeta`](crate::Input::SetMeta)), or tags that encode
    /// to more ([`Input::SetTags`](crate::Input::SetTags)). The metadata in
    /// force is unchanged.
    MetaTooLong,
    /// [`Input::Join`](crate::Input::Join) with no seed. No join was started.
    NoSeeds,
    /// The member is leaving or has left; it takes no more commands. The
    /// command was ignored.
    Leaving,
    /// [`Input::Message`](crate::Input::Message) to a name that is not a live member, or
    /// [`Input::ForceLeave`](crate::Input::ForceLeave) of a name not in our table. Nothing was
    /// queued or sent.
    UnknownMember,
    /// [`Input::ForceLeave`](crate::Input::ForceLeave) of a member that is
    /// alive or suspect (it would refute), or of ourselves. Nothing changed.
    NotFailed,
    /// A payload or state larger than its configured limit. Nothing was
    /// queued, sent or stored.
    TooLarge,
    /// Every stream slot (`max_streams`) is in use, or a query would go
    /// past `max_open_queries` or our own `query_rate`. No stream was
    /// opened, nothing was sent.
    Busy,
    /// [`Input::Respond`](crate::Input::Respond) to a query that is not
    /// open here: never raised, answered already, or past its deadline.
    /// Nothing was sent.
    UnknownQuery,
    /// [`Input::Query`](crate::Input::Query) with options out of range: a
    /// timeout of zero or above an hour, a relay factor above 5, a tag
    /// filter that is not a regular expression (or compiles too large),
    /// or a name in the reserved `_swim_` prefix (in serf's dialect,
    /// `_serf_` too). Nothing was sent.
    InvalidQuery,
    /// [`Input::Message`](crate::Input::Message) in serf's dialect
    /// ([`Config::serf_wire`](crate::Config::serf_wire)): serf reads every
    /// memberlist user message as one of its own, so a message for one
    /// member has no form there. Nothing was sent.
    Unsupported,
    /// A cluster-wide key operation on a member that does not seal what it
    /// sends: the key would cross the network in plaintext. Nothing was
    /// sent.
    #[cfg(feature = "encryption")]
    NotSealing,
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
            Error::UnknownMember => f.write_str("no member of that name here (a message needs a live one)"),
            Error::NotFailed => f.write_str("the member is not failed: only a failed member can be forced to leave"),
            Error::TooLarge => f.write_str("payload larger than its configured limit"),
            Error::Busy => f.write_str("every stream slot or query slot is in use, or the query rate is exceeded"),
            Error::UnknownQuery => {
                f.write_str("no open query of that id: unknown, answered already, or past its deadline")
            }
            Error::InvalidQuery => f.write_str("query options out of range, a bad tag filter, or a reserved name"),
            Error::Unsupported => f.write_str("serf's dialect has no message for one member"),
            #[cfg(feature = "encryption")]
            Error::NotSealing => {
                f.write_str("cluster-wide key operations need a keyring that seals what this member sends")
            }
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
