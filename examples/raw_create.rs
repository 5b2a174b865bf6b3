//! The physical-limit baseline for `bench/jetstream-bulk.py`: the official async-nats client
//! creating streams and consumers with IN_FLIGHT requests outstanding (1 is the way scripts do
//! it today, each awaited before the next). Streams first, then their consumers, as apply
//! orders them. Prints the seconds it took.
//!
//! Usage: raw_create URL COUNT IN_FLIGHT (creates S0000.. with a durable consumer each, R1)

use std::time::Instant;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, count, in_flight) = match args.as_slice() {
        [_, url, count, in_flight] => (url.clone(), count.parse::<usize>()?, in_flight.parse::<usize>()?),
        _ => return Err("usage: raw_create URL COUNT IN_FLIGHT".into()),
    };
    let js = jetstream::new(async_nats::connect(url).await?);
    let started = Instant::now();
    let streams = futures_util::stream::iter(0..count)
        .map(|i| {
            js.create_stream(stream::Config {
                name: format!("S{i:04}"),
                subjects: vec![format!("bulk.{i}.>")],
                num_replicas: 1,
                ..Default::default()
            })
        })
        .buffer_unordered(in_flight.max(1))
        .collect::<Vec<_>>()
        .await;
    for s in streams {
        s?;
    }
    let consumers = futures_util::stream::iter(0..count)
        .map(|i| {
            js.create_consumer_on_stream(
                consumer::pull::Config {
                    durable_name: Some(format!("C{i:04}")),
                    ..Default::default()
                },
                format!("S{i:04}"),
            )
        })
        .buffer_unordered(in_flight.max(1))
        .collect::<Vec<_>>()
        .await;
    for c in consumers {
        c?;
    }
    println!("{:.3}", started.elapsed().as_secs_f64());
    Ok(())
}
