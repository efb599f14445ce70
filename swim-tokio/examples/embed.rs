//! The README's "Embed it" example, kept compiling.

use swim_tokio::{Config, NodeBuilder, NodeEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn core::error::Error>> {
    let builder = NodeBuilder::new("web-1", "10.0.0.5:7946".parse()?).config(Config::lan()).meta(b"role=web".to_vec());
    let node = swim_tokio::start(builder)?;
    // Returns once a seed has answered with its table.
    node.join(&["10.0.0.4:7946".parse()?]).await?;
    // Bounded: what a slow consumer misses is counted, then reported.
    let events = node.events();
    let print = async {
        while let Some(e) = events.next().await {
            if let NodeEvent::Protocol { event, .. } = e {
                println!("{event:?}");
            }
        }
    };
    tokio::select! {
        () = print => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{} members", node.members().await?.len());
    // Returns once the leave has spread (or after leave_timeout).
    node.leave().await?;
    node.shutdown().await;
    Ok(())
}
