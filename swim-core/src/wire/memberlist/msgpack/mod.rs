//! The subset of msgpack that memberlist 0.2.2 speaks, as its Go codec
//! (`github.com/hashicorp/go-msgpack` 0.5.3, a zero `MsgpackHandle`)
//! writes and reads it.
//!
//! What that codec does, and therefore what [`mod@write`] reproduces:
//!
//! - structs are maps keyed by the Go field names, **sorted by name**
//!   (the codec sorts its field table for map encoding), fields tagged
//!   `omitempty` left out when zero, the map length counting only the
//!   fields written;
//! - every unsigned (and non-negative signed) integer takes the smallest
//!   encoding: positive fixint, then `uint8`/`16`/`32`/`64`
//!   (`0xcc`..`0xcf`); negative ones the smallest signed encoding;
//! - `string` and `[]byte` alike are the old spec's *raw*: fixstr under 32
//!   bytes, then `str16` (`0xda`), then `str32` (`0xdb`). `str8` and the
//!   `bin` family are never written, because `WriteExt` is off;
//! - a nil `[]byte` is `nil` (`0xc0`), an empty one an empty fixstr.
//!
//! What [`mod@read`] accepts is what the Go decoder accepts for those fields:
//! any integer width in range, `str8`/`bin*` for bytes, `0`/`1` for a
//! bool, `nil` for any field (its zero value), keys in any order, unknown
//! keys skipped. It refuses a struct sent as an array (Go takes it; no
//! memberlist sends it).

pub(crate) mod read;
pub(crate) mod write;
