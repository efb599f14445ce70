//! Writing traces: a streaming writer with a bounded buffer, and the
//! driver's recording hook.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use super::{ActionNote, FLUSH_BYTES, MAGIC, TRACE_VERSION, TraceHeader, TraceInput, TraceRecord, TraceSink};
use crate::api::driver::{Driver, Tap};
use crate::api::{Action, Input};
use crate::util::time::Instant;

/// Encodes a trace into a sink, record by record.
pub struct TraceWriter {
    buf: Vec<u8>,
    sink: Box<dyn TraceSink + Send>,
}

impl fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceWriter").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

impl TraceWriter {
    /// A trace of the member described by `header`, into `sink`.
    pub fn new(header: &TraceHeader, sink: Box<dyn TraceSink + Send>) -> Self {
        let mut buf = Vec::with_capacity(FLUSH_BYTES);
        write_header(&mut buf, header);
        let mut w = TraceWriter { buf, sink };
        w.flush();
        w
    }

    /// Appends one record.
    pub fn push(&mut self, record: &TraceRecord) {
        write_record(&mut self.buf, record);
        if self.buf.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Hands everything buffered to the sink.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.sink.write(&self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(any(test, feature = "internals"))]
/// A whole trace in memory: `header`, then `records` (to write a trace
/// out of a test or a tool, or to edit one read with [`TraceReader`](super::reader::TraceReader)).
pub fn to_bytes<'r>(header: &TraceHeader, records: impl IntoIterator<Item = &'r TraceRecord>) -> Vec<u8> {
    let mut buf = Vec::new();
    write_header(&mut buf, header);
    for r in records {
        write_record(&mut buf, r);
    }
    buf
}

/// Magic, version, header length, header.
fn write_header(buf: &mut Vec<u8>, header: &TraceHeader) {
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&TRACE_VERSION.to_le_bytes());
    let body = postcard::to_allocvec(header).unwrap_or_default();
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
}

/// Record length, record.
fn write_record(buf: &mut Vec<u8>, record: &TraceRecord) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    // Encoding into a Vec cannot fail; should it, the record is left out.
    match postcard::to_extend(record, core::mem::take(buf)) {
        Ok(b) => *buf = b,
        Err(_) => return,
    }
    let len = (buf.len() - at - 4) as u32;
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Tap for TraceWriter {
    fn input(&mut self, at: Instant, input: Input<'_>, digest: u64, actions: &[Action]) {
        let record = TraceRecord {
            at,
            input: TraceInput::from(input),
            digest,
            actions: actions.iter().map(ActionNote::of).collect(),
        };
        self.push(&record);
    }

    fn flush(&mut self) {
        TraceWriter::flush(self);
    }
}

impl Driver {
    /// Records every input from now on, with the running digest after it,
    /// into `writer` (which already holds the member's header). Recording
    /// changes nothing the machine sees or emits.
    pub fn record(&mut self, writer: TraceWriter) {
        self.tap = Some(Box::new(writer));
    }

    /// Stops recording; the trace is flushed to its sink.
    pub fn stop_recording(&mut self) {
        self.tap = None;
    }

    /// Hands buffered trace bytes to the sink.
    pub fn flush_trace(&mut self) {
        if let Some(tap) = self.tap.as_mut() {
            tap.flush();
        }
    }
}
