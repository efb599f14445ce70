//! Small utilities with no protocol in them: time, the random generator's
//! interface, member names, a timer wheel, a hash.

pub(crate) mod fnv;
pub(crate) mod name;
pub(crate) mod rng;
pub(crate) mod time;
pub(crate) mod timers;
