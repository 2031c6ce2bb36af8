//! A fetch served from the host's cache against one over loopback.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A fetch served from loopback: the first build downloads, the next is
/// served from the digest-keyed cache.
pub(super) fn fetch_hit_vs_miss(out: &mut String) {
    use std::io::{Read as _, Write as _};
    let bin = workspace().join("target/release/cascade");
    let _ = writeln!(out, "## Fetch: cache miss vs hit\n");
    if !bin.is_file() {
        let _ = writeln!(out, "skipped: needs target/release/cascade.\n");
        return;
    }
    let body: Vec<u8> = (0..(64u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha = hex::encode(sha2::Sha256::digest(&body));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(body);
    let data = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(&data);
        }
    });
    let rounds = 5;
    let mut misses = Vec::new();
    let mut hits = Vec::new();
    for _ in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("fetch.toml"),
            format!("[[fetch]]\nurl = \"http://127.0.0.1:{port}/rt\"\nsha256 = \"{sha}\"\ndest = \"rt.bin\"\n"),
        )
        .unwrap();
        let build = |tag: &str| {
            let (d, o) = time(|| {
                Command::new(&bin)
                    .env("CASCADE_CACHE_DIR", tmp.path().join("cache"))
                    .arg("build")
                    .arg(&app)
                    .args([
                        "--buildpack",
                        guests::test_fetcher(),
                        "--allow",
                        "fetch:127.0.0.1",
                        "--layer-compression",
                        "none",
                        "--output",
                    ])
                    .arg(format!("oci:{}:{tag}", tmp.path().join("out").display()))
                    .output()
                    .unwrap()
            });
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            d
        };
        misses.push(build("a"));
        hits.push(build("b"));
    }
    let (m, h) = (median(misses), median(hits));
    let _ = writeln!(
        out,
        "A 64 MiB file fetched by the `test/fetcher` buildpack from a loopback HTTP server into a launch layer (uncompressed layers, so export does not hide the difference); each round a fresh cache: the first build downloads and verifies, the second (a new tag, same cache) copies from the cache. Whole `cascade build` processes, median of {rounds}.\n"
    );
    let _ = writeln!(
        out,
        "| cache miss | cache hit | hit / miss |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {:.0} ms | {:.0} ms | **{:.2}×** |\n",
        m.as_secs_f64() * 1e3,
        h.as_secs_f64() * 1e3,
        h.as_secs_f64() / m.as_secs_f64()
    );
}
