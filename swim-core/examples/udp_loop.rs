//! Embedding [`Swim`] in a hand-written event loop over
//! `std::net::UdpSocket`, with no async runtime.
//!
//! Three members run on 127.0.0.1, each in a thread of its own, on ports
//! the OS picks. Each loop waits on its socket with `set_read_timeout` until
//! the next deadline the state machine asked for, and carries out every
//! [`Action`]: datagrams are sent and their buffers handed back with
//! [`Swim::recycle`], the timer is re-armed, events are printed, and
//! streams (which the join's full-state sync needs) are plain
//! `std::net::TcpStream`s in non-blocking mode, framed as the real node
//! frames them: a 4-byte big-endian length, then the payload. Junk
//! datagrams sent to every member are rejected and counted, and the loops
//! go on. Once every member sees the two others alive, each prints its
//! member table and counters, and the program ends.
//!
//! ```text
//! cargo run -p lapswim-core --example udp_loop
//! ```
//!
//! The loop polls its TCP sockets every few milliseconds to stay short; a
//! real runtime waits on all of its sockets at once (poll, epoll, kqueue).
//! `lapswim-node`'s task (`swim-node/src/task.rs` and `streams.rs`) is the
//! full version of this loop. A runtime without streams at all would
//! answer every [`Action::OpenStream`] with [`Input::StreamClosed`] and
//! [`StreamEnd::Refused`]: datagrams would still work, but joins, which
//! start with a full-state sync over a stream, would fail.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use lapswim_core::{
    Action, Config, Datagram, Identity, Input, Instant, MemberName, MemberState, StreamEnd, StreamId, Swim,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// How many members the example starts.
const MEMBERS: usize = 3;

/// How long the example may take before it gives up.
const LIMIT: Duration = Duration::from_secs(30);

/// The longest the loop waits before it looks at its TCP sockets again.
const TCP_POLL: Duration = Duration::from_millis(5);

type Error = Box<dyn core::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    // Bind every member first, so the seed's address is known.
    let mut bound = Vec::new();
    for _ in 0..MEMBERS {
        bound.push(bind()?);
    }
    let addrs = bound.iter().map(|(socket, _)| socket.local_addr()).collect::<Result<Vec<_>, _>>()?;
    let done: Arc<Vec<AtomicBool>> = Arc::new((0..MEMBERS).map(|_| AtomicBool::new(false)).collect());
    let mut threads = Vec::new();
    for (i, (socket, listener)) in bound.into_iter().enumerate() {
        let done = done.clone();
        let name = format!("member-{i}");
        // Every member but the first joins through the first.
        let seeds = if i == 0 { Vec::new() } else { vec![addrs[0]] };
        threads.push(std::thread::spawn(move || run(i, &name, socket, listener, &seeds, &done)));
    }
    // Junk at every member: empty, one byte, a truncated header, a
    // datagram-sized run of one byte.
    let junk = UdpSocket::bind("127.0.0.1:0")?;
    for &addr in &addrs {
        for payload in [&b""[..], &[0], &[1, 0xff, 0xff, 0xff], &[0xab; 1400]] {
            junk.send_to(payload, addr)?;
        }
    }
    for t in threads {
        t.join().map_err(|_| "a member's thread panicked")??;
    }
    Ok(())
}

/// A UDP socket on an OS-chosen loopback port and a TCP listener on the
/// same port number: members reach each other's streams at the address
/// they gossip.
fn bind() -> Result<(UdpSocket, TcpListener), Error> {
    for _ in 0..100 {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        // Another program may hold the TCP port of that number; then try
        // another.
        if let Ok(listener) = TcpListener::bind(socket.local_addr()?) {
            listener.set_nonblocking(true)?;
            return Ok((socket, listener));
        }
    }
    Err("no port free for both UDP and TCP".into())
}

/// One open stream: the connection, bytes read and not yet a whole frame,
/// bytes still to write, and whether the state machine closed it (then it
/// shuts down once its bytes are out, and nothing more is reported).
struct Conn {
    tcp: TcpStream,
    read: Vec<u8>,
    write: Vec<u8>,
    closing: bool,
}

/// Member `index`'s event loop: runs until every member has seen all the
/// others alive (`done`), then prints its table.
fn run(
    index: usize,
    name: &str,
    socket: UdpSocket,
    listener: TcpListener,
    seeds: &[SocketAddr],
    done: &[AtomicBool],
) -> Result<(), Error> {
    let addr = socket.local_addr()?;
    let me = Identity::new(MemberName::new(name)?, addr);
    // A fixed seed per member makes the run reproducible but for the
    // sockets' timing; a deployment seeds from the OS.
    let rng = Xoshiro256PlusPlus::seed_from_u64(index as u64);
    let mut swim = Swim::new(Config::local(), me, rng)?;
    println!("{name} listening on {addr}");

    // The state machine's clock: milliseconds since the loop started.
    #[expect(clippy::disallowed_methods, reason = "this loop is the runtime: it reads the clock for the state machine")]
    let start = StdInstant::now();
    let now = || Instant::from_millis(start.elapsed().as_millis() as u64);

    // Reused for every input: the steady state does not allocate.
    let mut out = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut conns: BTreeMap<StreamId, Conn> = BTreeMap::new();
    let mut next_inbound = 0;
    // Inputs the runtime owes the state machine (a connect that failed is
    // reported after the action that asked for it, never within it).
    let mut owed: Vec<(StreamId, StreamEnd)> = Vec::new();
    let mut buf = vec![0u8; 65_536];

    if !seeds.is_empty() {
        swim.handle(now(), Input::Join { seeds }, &mut out)?;
    }
    loop {
        // 1. Carry out what the last inputs asked for.
        for action in out.drain(..) {
            match action {
                Action::Send { to, packet } => {
                    // A send that fails is a lost datagram: the protocol
                    // copes with loss, so the loop goes on.
                    if let Err(e) = socket.send_to(&packet, to) {
                        eprintln!("{name}: send to {to}: {e}");
                    }
                    swim.recycle(packet);
                }
                Action::SetTimer(at) => deadline = Some(at),
                Action::Event(event) => println!("{name}: {event:?}"),
                Action::OpenStream { id, to } => match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
                    Ok(tcp) => {
                        tcp.set_nonblocking(true)?;
                        conns.insert(id, Conn { tcp, read: Vec::new(), write: Vec::new(), closing: false });
                    }
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => owed.push((id, StreamEnd::NotListening)),
                    Err(e) if e.kind() == ErrorKind::TimedOut => owed.push((id, StreamEnd::TimedOut)),
                    Err(_) => owed.push((id, StreamEnd::Failed)),
                },
                Action::SendFrame { id, frame } => {
                    if let Some(c) = conns.get_mut(&id) {
                        c.write.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                        c.write.extend_from_slice(&frame);
                    }
                    swim.recycle(frame);
                }
                Action::CloseStream { id } => {
                    if let Some(c) = conns.get_mut(&id) {
                        c.closing = true;
                    }
                }
                // `Action` is non-exhaustive: a later version may add kinds.
                _ => {}
            }
        }

        // 2. Stop once every member sees the others alive.
        let alive = swim.members().filter(|m| m.state == MemberState::Alive).count();
        if alive == MEMBERS {
            done[index].store(true, Ordering::Relaxed);
        }
        if done.iter().all(|d| d.load(Ordering::Relaxed)) {
            break;
        }
        if start.elapsed() > LIMIT {
            return Err(format!("{name}: the members did not all see each other within {LIMIT:?}").into());
        }

        // 3. Streams: what the state machine is owed, new connections,
        // bytes to write, frames read.
        for (id, end) in owed.drain(..) {
            swim.handle(now(), Input::StreamClosed { id, end }, &mut out)?;
        }
        while let Ok((tcp, from)) = listener.accept() {
            tcp.set_nonblocking(true)?;
            let id = StreamId::Inbound(next_inbound);
            next_inbound += 1;
            conns.insert(id, Conn { tcp, read: Vec::new(), write: Vec::new(), closing: false });
            swim.handle(now(), Input::StreamAccepted { id, from }, &mut out)?;
        }
        let mut ended = Vec::new();
        for (&id, c) in conns.iter_mut() {
            let handle = |frame: &[u8]| {
                // A refused frame (malformed, unexpected) is counted by the
                // state machine, which ends the stream if it must.
                let _ = swim.handle(now(), Input::StreamFrame { id, frame }, &mut out);
            };
            if let Some(end) = pump(c, &mut buf, handle) {
                ended.push((id, end));
            }
        }
        for (id, end) in ended {
            let c = conns.remove(&id).expect("listed above");
            // A stream the state machine closed is not reported again.
            if !c.closing {
                swim.handle(now(), Input::StreamClosed { id, end }, &mut out)?;
            }
        }
        if !out.is_empty() {
            continue;
        }

        // 4. Wait for a datagram until the deadline (and no longer than the
        // TCP poll interval).
        let wait = deadline.map_or(TCP_POLL, |at| {
            let left = at.saturating_duration_since(now()).as_millis();
            Duration::from_millis(left).min(TCP_POLL)
        });
        socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                // A junk datagram is rejected, counted, and changes nothing;
                // `Err` here is a refused input, not a reason to stop.
                if let Err(e) = swim.handle(now(), Input::Packet { from, bytes: &buf[..len] }, &mut out) {
                    eprintln!("{name}: datagram from {from} refused: {e:?}");
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // A previous send was refused (ICMP port unreachable): not
            // this socket's failure.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e.into()),
        }
        if deadline.is_some_and(|at| now() >= at) {
            deadline = None;
            swim.handle(now(), Input::Timeout, &mut out)?;
        }
    }

    // The table as this member sees it, and what its counters say.
    let mut table: Vec<String> =
        swim.members().map(|m| format!("    {:<10} {:<16} {:?}", m.name.as_str(), m.addr, m.state)).collect();
    table.sort();
    let stats = swim.stats();
    println!(
        "{name}'s table ({} datagrams received, {} rejected as junk):\n{}",
        stats.packets_received,
        stats.rejected_total(),
        table.join("\n")
    );
    Ok(())
}

/// Writes what `c` has queued and reads what arrived, handing every whole
/// frame to `frame` (but for a stream the state machine closed: what
/// arrives then is dropped); the stream's end when it ended.
fn pump(c: &mut Conn, buf: &mut [u8], mut frame: impl FnMut(&[u8])) -> Option<StreamEnd> {
    while !c.write.is_empty() {
        match c.tcp.write(&c.write) {
            Ok(n) => {
                c.write.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Some(StreamEnd::Failed),
        }
    }
    if c.closing && c.write.is_empty() {
        let _ = c.tcp.shutdown(std::net::Shutdown::Write);
    }
    loop {
        match c.tcp.read(buf) {
            Ok(0) => return Some(StreamEnd::Closed),
            Ok(n) => c.read.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Some(StreamEnd::Failed),
        }
    }
    // Whole frames: a 4-byte big-endian length, then that many bytes.
    loop {
        let prefix = c.read.first_chunk::<4>()?;
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > Datagram::MAX_FRAME_LEN {
            return Some(StreamEnd::Failed);
        }
        if c.read.len() < 4 + len {
            return None;
        }
        if !c.closing {
            frame(&c.read[4..4 + len]);
        }
        c.read.drain(..4 + len);
    }
}
