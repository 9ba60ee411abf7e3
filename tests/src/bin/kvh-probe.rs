//! A tiny network probe that network-fault tests run inside node
//! namespaces (`Netns::command`), so that they depend on no system tool.
//!
//! ```text
//! kvh-probe tcp-serve ADDR              accept forever, answer "ok\n"
//! kvh-probe tcp-check ADDR TIMEOUT_MS   exit 0 if ADDR answers "ok", else 1
//! kvh-probe udp-count ADDR WINDOW_MS    print "ready", count datagrams for
//!                                       WINDOW_MS, print the count
//! kvh-probe udp-send ADDR COUNT         send COUNT datagrams, 1 ms apart
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
            let answered = TcpStream::connect_timeout(&addr, timeout)
                .and_then(|stream| {
                    stream.set_read_timeout(Some(timeout))?;
                    let mut line = String::new();
                    BufReader::new(stream).read_line(&mut line)?;
                    Ok(line)
                })
                .is_ok_and(|line| line == "ok\n");
            println!("{}", if answered { "connected" } else { "failed" });
            Ok(if answered { 0 } else { 1 })
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
