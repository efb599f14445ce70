//! Reading traces: the header, then the records in order.

use super::{MAGIC, MAX_RECORD, TRACE_VERSION, TraceError, TraceHeader, TraceRecord};

/// Reads a trace: its header, then its records in order.
#[derive(Debug)]
pub struct TraceReader<'a> {
    /// The member the trace is of.
    pub header: TraceHeader,
    rest: &'a [u8],
    records: usize,
}

impl<'a> TraceReader<'a> {
    /// Checks the magic and version and decodes the header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, TraceError> {
        let Some(rest) = bytes.strip_prefix(&MAGIC[..]) else {
            return Err(TraceError::NotATrace);
        };
        let (version, rest) = split::<2>(rest).ok_or(TraceError::Truncated { records: 0 })?;
        let version = u16::from_le_bytes(version);
        if version != TRACE_VERSION {
            return Err(TraceError::Version(version));
        }
        let (len, rest) = split::<4>(rest).ok_or(TraceError::Truncated { records: 0 })?;
        let len = u32::from_le_bytes(len) as usize;
        if rest.len() < len {
            return Err(TraceError::Truncated { records: 0 });
        }
        let (body, rest) = rest.split_at(len);
        let header = postcard::from_bytes(body).map_err(|_| TraceError::Malformed { records: 0 })?;
        Ok(TraceReader { header, rest, records: 0 })
    }
}

fn split<const N: usize>(b: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = b.split_first_chunk::<N>()?;
    Some((*head, rest))
}

impl Iterator for TraceReader<'_> {
    type Item = Result<TraceRecord, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let records = self.records;
        let Some((len, rest)) = split::<4>(self.rest) else {
            self.rest = &[];
            return Some(Err(TraceError::Truncated { records }));
        };
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD {
            self.rest = &[];
            return Some(Err(TraceError::Malformed { records }));
        }
        if rest.len() < len {
            self.rest = &[];
            return Some(Err(TraceError::Truncated { records }));
        }
        let (body, rest) = rest.split_at(len);
        self.rest = rest;
        self.records += 1;
        Some(postcard::from_bytes(body).map_err(|_| {
            self.rest = &[];
            TraceError::Malformed { records }
        }))
    }
}
