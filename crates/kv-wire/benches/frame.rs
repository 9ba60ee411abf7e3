//! Criterion benchmarks of framing (group `frame`): one frame encoded and
//! decoded through `WireCodec`, and the CRC-32 of its payload alone, for a
//! small request (100 B), a large value (64 KiB) and a near-limit state
//! (1 MiB). The checksum's share of the codec's time is the second figure
//! over the first.

#![allow(clippy::unwrap_used)] // a frame that fails here is a broken benchmark

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kv_wire::WireCodec;
use tokio_util::codec::{Decoder, Encoder};

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for len in [100usize, 64 << 10, 1 << 20] {
        let payload = Bytes::from(vec![0x5a; len]);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("encode_decode_{len}"), |b| {
            let mut codec = WireCodec::<Bytes, Bytes>::new(16 << 20);
            let mut buf = BytesMut::with_capacity(len + 16);
            b.iter(|| {
                codec.encode(payload.clone(), &mut buf).unwrap();
                black_box(codec.decode(&mut buf).unwrap());
            });
        });
        group.bench_function(format!("crc32_{len}"), |b| {
            b.iter(|| black_box(crc32fast::hash(black_box(&payload))));
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
