//! The README's "Embed it" example, runnable: three nodes on loopback
//! form a cluster, one leaves and the others see it go, then all stop.
//!
//! `cargo run -p lapswim-tokio --example embed`
//!
//! In a deployment each process starts one node on an address the others
//! reach (`"10.0.0.5:7946"`) and joins through any member it knows; here
//! the OS picks free ports on 127.0.0.1 so the example runs anywhere.

use core::time::Duration;

use lapswim_tokio::{Config, Event, NodeBuilder, NodeEvent};

/// How long any step may take before the example gives up.
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<(), Box<dyn core::error::Error>> {
    run().await
}

/// The example itself (its test runs it too).
pub(crate) async fn run() -> Result<(), Box<dyn core::error::Error>> {
    let mut nodes = Vec::new();
    for name in ["web-1", "web-2", "web-3"] {
        // Port 0: the OS picks one, for UDP and TCP alike.
        let builder = NodeBuilder::new(name, "127.0.0.1:0".parse()?).config(Config::local()).meta(b"role=web".to_vec());
        let node = lapswim_tokio::start(builder)?;
        println!("{name} listening on {}", node.addr());
        nodes.push(node);
    }
    let seed = nodes[0].addr();
    for node in &nodes[1..] {
        // Returns once a seed has answered with its table.
        let via = node.join(&[seed]).await?;
        println!("{} joined through {via}", node.name());
    }

    // Bounded: what a slow consumer misses is counted, then reported.
    let events = nodes[0].events();
    let leaver = nodes[2].name().clone();
    let watch = async {
        while let Some(e) = events.next().await {
            if let NodeEvent::Protocol { event, .. } = e {
                println!("web-1 sees {event:?}");
                if matches!(&event, Event::Left { name } if *name == leaver) {
                    return true;
                }
            }
        }
        false
    };
    // Returns once the leave has spread (or after leave_timeout).
    nodes[2].leave().await?;
    if !tokio::time::timeout(LIMIT, watch).await.unwrap_or(false) {
        return Err(format!("web-1 did not see {leaver} leave within {LIMIT:?}").into());
    }
    for m in nodes[0].members().await? {
        println!("web-1's table: {} at {} is {:?}", m.name, m.addr, m.state);
    }
    for node in &nodes {
        node.shutdown().await;
    }
    Ok(())
}
