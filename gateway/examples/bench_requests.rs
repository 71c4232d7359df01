//! Request material for the gateway benchmark (`gateway/bench/run.sh`); wrk's Lua has no HMAC or
//! Ed25519, so signatures are made here.
//!
//! - `bench_requests github <secret> <body-file>` prints `sha256=<hex>` for the body.
//! - `bench_requests discord <count> <out-file> <guild-id>` writes `count` distinct signed
//!   `/usage` interactions, one a line as `signature<TAB>timestamp<TAB>body`, and prints the
//!   public key (hex) to give the gateway as `DISCORD_PUBLIC_KEY`.

use std::io::Write;

use ed25519_dalek::{Signer, SigningKey};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["github", secret, body_file] => {
            let body = std::fs::read(body_file)?;
            println!(
                "sha256={}",
                onomancer_gateway::signature::hmac_sha256_hex(secret, &body)
            );
        }
        ["discord", count, out, guild] => {
            let count: u64 = count.parse()?;
            let key = SigningKey::generate(&mut rand_core::OsRng);
            let ts = chrono::Utc::now().timestamp().to_string();
            let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
            for i in 0..count {
                let body = serde_json::json!({
                    "type": 2,
                    "id": format!("{}", 1_000_000_000_000_000_000u64 + i),
                    "application_id": "555555555555555555",
                    "token": format!("bench-token-{i}"),
                    "guild_id": guild,
                    "channel_id": "444444444444444444",
                    "member": {"user": {"id": "777777777777777777"}, "roles": []},
                    "data": {"id": "1", "name": "usage", "type": 1}
                })
                .to_string();
                let sig = key.sign(&[ts.as_bytes(), body.as_bytes()].concat());
                writeln!(w, "{}\t{}\t{}", hex::encode(sig.to_bytes()), ts, body)?;
            }
            w.flush()?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
        }
        _ => anyhow::bail!(
            "usage: bench_requests github <secret> <body-file> | discord <count> <out-file> <guild-id>"
        ),
    }
    Ok(())
}
