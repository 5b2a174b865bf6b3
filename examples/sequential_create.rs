//! The baseline for `bench/jetstream-bulk.py`: creating streams and consumers the way scripts
//! do today, one JetStream request at a time with the official client, each awaited before the
//! next.
//!
//! Usage: sequential_create URL COUNT (creates S0000.. with a durable consumer each, R1)

use std::time::Instant;

use async_nats::jetstream::{self, consumer, stream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, count) = match args.as_slice() {
        [_, url, count] => (url.clone(), count.parse::<usize>()?),
        _ => return Err("usage: sequential_create URL COUNT".into()),
    };
    let js = jetstream::new(async_nats::connect(url).await?);
    let started = Instant::now();
    for i in 0..count {
        let name = format!("S{i:04}");
        let s = js
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("bulk.{i}.>")],
                num_replicas: 1,
                ..Default::default()
            })
            .await?;
        s.create_consumer(consumer::pull::Config {
            durable_name: Some(format!("C{i:04}")),
            ..Default::default()
        })
        .await?;
    }
    println!("{:.3}", started.elapsed().as_secs_f64());
    Ok(())
}
