//! The examples run as written: on loopback, to completion.

#[path = "../examples/embed.rs"]
#[allow(dead_code, reason = "the example's own main is its entry point there, unused here")]
mod embed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embed_example_runs_to_completion() {
    embed::run().await.expect("the example runs");
}
