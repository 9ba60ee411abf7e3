//! A tiny network probe that network-fault tests run inside node
//! namespaces (`Netns::command`), so that they depend on no system tool.
//!
//! ```text
//! kvh-probe tcp-serve ADDR              accept forever, answer "ok\n"
//! kvh-probe tcp-check ADDR TIMEOUT_MS   exit 0 if ADDR answers "ok", else 1
//! kvh-probe udp-count ADDR WINDOW_MS    print "ready", count datagrams for
//!                                       WINDOW_MS, print the count
//! kvh-probe udp-send ADDR COUNT         send COUNT datagrams, 1 ms apart
//! kvh-probe tcp-time ADDR TIMEOUT_MS    print the ms from connecting to
//!                                       reading "ok" (exit 1 on failure)
//! kvh-probe delay-proxy ADDR DELAY_MS   listen on an ephemeral port (print
//!                                       it), forward each connection to
//!                                       ADDR, holding every chunk of bytes
//!                                       DELAY_MS, both ways (Netns::set_delay)
//! kvh-probe hold-netns - NODES          make a Netns, print its namespaces,
//!                                       its root interface, "ready", and
//!                                       wait to be killed (cleanup tests)
//! ```

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kvh-probe {}: {e}", args.join(" "));
            2
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> Result<i32, String> {
    let [command, addr, rest @ ..] = args else {
        return Err("usage: kvh-probe COMMAND ADDR [N]".to_owned());
    };
    if command == "hold-netns" {
        let nodes = rest
            .first()
            .ok_or("missing node count")?
            .parse()
            .map_err(|e| format!("{e}"))?;
        let net = kv_tests::net::Netns::create(nodes).map_err(|e| format!("{e:#}"))?;
        for ns in net.namespaces() {
            println!("{ns}");
        }
        println!("{}", net.root_interface());
        println!("ready");
        let _ = std::io::stdout().flush();
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let number = || -> Result<u64, String> {
        rest.first()
            .ok_or("missing number")?
            .parse()
            .map_err(|e| format!("{e}"))
    };
    match command.as_str() {
        "tcp-serve" => {
            let listener = TcpListener::bind(addr).map_err(|e| e.to_string())?;
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(b"ok\n");
            }
            Ok(0)
        }
        "tcp-check" => {
            let timeout = Duration::from_millis(number()?);
            let answered = answers_ok(addr, timeout);
            println!("{}", if answered { "connected" } else { "failed" });
            Ok(if answered { 0 } else { 1 })
        }
        "tcp-time" => {
            let timeout = Duration::from_millis(number()?);
            let start = Instant::now();
            let answered = answers_ok(addr, timeout);
            if !answered {
                println!("failed");
                return Ok(1);
            }
            println!("{}", start.elapsed().as_millis());
            Ok(0)
        }
        "delay-proxy" => {
            let delay = Duration::from_millis(number()?);
            delay_proxy(addr, delay)
        }
        "udp-count" => {
            let window = Duration::from_millis(number()?);
            let socket = UdpSocket::bind(addr).map_err(|e| e.to_string())?;
            println!("ready");
            let _ = std::io::stdout().flush();
            let deadline = Instant::now() + window;
            let mut count = 0u64;
            let mut buf = [0u8; 64];
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                if left.is_zero() {
                    break;
                }
                socket
                    .set_read_timeout(Some(left))
                    .map_err(|e| e.to_string())?;
                if socket.recv(&mut buf).is_ok() {
                    count += 1;
                }
            }
            println!("{count}");
            Ok(0)
        }
        "udp-send" => {
            let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
            for _ in 0..number()? {
                // A send refused (ICMP from an earlier datagram) is a lost
                // datagram, which is what the receiver counts.
                let _ = socket.send_to(b"probe", addr);
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(0)
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Most connections one delay proxy carries at once; more are refused, so a
/// runaway client cannot exhaust threads.
const PROXY_CONNECTIONS_MAX: usize = 512;

/// Most chunks held in one direction of one connection; a reader that gets
/// this far ahead of the delayed writer waits, bounding memory.
const PROXY_CHUNKS_MAX: usize = 1024;

/// Accepts on an ephemeral port, printed first, and forwards each
/// connection to `target`, every chunk held `delay` after it was read.
/// Whether a `tcp-serve` at `addr` answers "ok" within `timeout`, both to
/// connect and to read.
fn answers_ok(addr: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&addr, timeout)
        .and_then(|stream| {
            stream.set_read_timeout(Some(timeout))?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line)?;
            Ok(line)
        })
        .is_ok_and(|line| line == "ok\n")
}

fn delay_proxy(target: SocketAddr, delay: Duration) -> Result<i32, String> {
    let listener = TcpListener::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("{port}");
    let _ = std::io::stdout().flush();
    let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for client in listener.incoming().flatten() {
        use std::sync::atomic::Ordering;
        if open.load(Ordering::Relaxed) >= PROXY_CONNECTIONS_MAX {
            drop(client);
            continue;
        }
        let Ok(upstream) = TcpStream::connect(target) else {
            // The node is not listening: the client sees the connection
            // close, as it would see a refusal without the proxy.
            continue;
        };
        open.fetch_add(1, Ordering::Relaxed);
        let open = open.clone();
        std::thread::spawn(move || {
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            if let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) {
                let up = std::thread::spawn(move || pump(c, u, delay));
                pump(upstream, client, delay);
                let _ = up.join();
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    Ok(0)
}

/// Copies `from` to `to`, each chunk written `delay` after it was read,
/// in order; at the end of `from`, shuts `to` for writing.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    use std::io::Read as _;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Instant, Vec<u8>)>(PROXY_CHUNKS_MAX);
    let mut writer_end = match to.try_clone() {
        Ok(t) => t,
        Err(_) => return,
    };
    let writer = std::thread::spawn(move || {
        for (due, chunk) in rx {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if writer_end.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = writer_end.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = Instant::now() + delay;
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = to.flush();
}
