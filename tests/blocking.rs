//! Blocking list commands with several clients and real time: deadlines, FIFO among many waiters,
//! waiters that leave (timeout, disconnect), pipelined commands behind a blocked one. Each check
//! runs on redis-server and on slotway, so both must behave the same.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};
use support::{Conn, ServerProc};

fn servers() -> Vec<ServerProc> {
    let mut v = vec![support::slotway_node(&[])];
    if support::redis_available() {
        v.push(support::redis_server(&[]));
    }
    v
}

/// True if nothing arrives on `c` within `ms`.
fn silent(c: &mut Conn, ms: u64) -> bool {
    c.stream.set_read_timeout(Some(Duration::from_millis(ms))).expect("timeout");
    let mut b = [0u8; 64];
    let quiet = c.stream.read(&mut b).is_err();
    c.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    quiet
}

fn send(c: &mut Conn, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&a);
}

fn read(c: &mut Conn) -> Vec<u8> {
    c.read_reply().expect("reply")
}

fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn timeout_fires_on_time() {
    for s in servers() {
        let mut c = s.conn();
        for (cmd, expect) in [
            (vec!["BLPOP", "t", "0.3"], &b"*-1\r\n"[..]),
            (vec!["BLMOVE", "t", "u", "LEFT", "LEFT", "0.3"], &b"*-1\r\n"[..]),
            (vec!["BLMPOP", "0.3", "1", "t", "LEFT"], &b"*-1\r\n"[..]),
        ] {
            let t0 = Instant::now();
            send(&mut c, &cmd);
            assert_eq!(read(&mut c), expect, "{}: {cmd:?}", s.name);
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(280), "{}: {cmd:?} timed out after {took:?}", s.name);
            assert!(took < Duration::from_millis(1500), "{}: {cmd:?} timed out after {took:?}", s.name);
        }
        // Timeout 0 waits for ever.
        send(&mut c, &["BRPOP", "t", "0"]);
        assert!(silent(&mut c, 500), "{}: BRPOP with timeout 0 returned", s.name);
    }
}

#[test]
fn many_waiters_are_served_in_arrival_order() {
    for s in servers() {
        let mut waiters: Vec<Conn> = (0..5).map(|_| s.conn()).collect();
        for w in waiters.iter_mut() {
            send(w, &["BLPOP", "fifo", "0"]);
            pause();
        }
        let mut p = s.conn();
        for i in 0..5 {
            let v = format!("v{i}");
            assert_eq!(p.raw(&["RPUSH", "fifo", &v]), b":1\r\n", "{}", s.name);
            let want = format!("*2\r\n$4\r\nfifo\r\n$2\r\n{v}\r\n");
            assert_eq!(read(&mut waiters[i]), want.as_bytes(), "{}: waiter {i}", s.name);
            for w in waiters.iter_mut().skip(i + 1) {
                assert!(silent(w, 20), "{}: a later waiter was served early", s.name);
            }
        }
        assert_eq!(p.raw(&["LLEN", "fifo"]), b":0\r\n", "{}", s.name);
    }
}

#[test]
fn waiters_that_left_are_skipped() {
    for s in servers() {
        // One times out, one disconnects, the third gets the element.
        let mut gone = s.conn();
        send(&mut gone, &["BLPOP", "left", "0.1"]);
        let mut quitter = s.conn();
        send(&mut quitter, &["BLPOP", "left", "0"]);
        pause();
        drop(quitter);
        let mut stays = s.conn();
        send(&mut stays, &["BRPOPLPUSH", "left", "dst", "0"]);
        assert_eq!(read(&mut gone), b"*-1\r\n", "{}", s.name);
        pause();
        let mut p = s.conn();
        assert_eq!(p.raw(&["LPUSH", "left", "x"]), b":1\r\n", "{}", s.name);
        assert_eq!(read(&mut stays), b"$1\r\nx\r\n", "{}", s.name);
        assert_eq!(p.raw(&["LRANGE", "dst", "0", "-1"]), b"*1\r\n$1\r\nx\r\n", "{}", s.name);
        assert_eq!(p.raw(&["LLEN", "left"]), b":0\r\n", "{}", s.name);
    }
}

#[test]
fn pipelined_commands_wait_behind_a_blocked_one() {
    for s in servers() {
        let mut c = s.conn();
        let mut bytes = support::conn::encode(&[b"BLPOP", b"pipe", b"0"]);
        bytes.extend(support::conn::encode(&[b"PING"]));
        bytes.extend(support::conn::encode(&[b"LLEN", b"pipe"]));
        c.send_raw(&bytes);
        assert!(silent(&mut c, 200), "{}: a reply came before the blocked command was served", s.name);
        let mut p = s.conn();
        assert_eq!(p.raw(&["RPUSH", "pipe", "a", "b"]), b":2\r\n", "{}", s.name);
        assert_eq!(read(&mut c), b"*2\r\n$4\r\npipe\r\n$1\r\na\r\n", "{}", s.name);
        assert_eq!(read(&mut c), b"+PONG\r\n", "{}", s.name);
        assert_eq!(read(&mut c), b":1\r\n", "{}", s.name);
    }
}

#[test]
fn a_push_wakes_a_chain_of_moves() {
    for s in servers() {
        // c1 moves a -> b, c2 moves b -> c, c3 pops c: one push to a ends in c3's hands.
        let mut c1 = s.conn();
        send(&mut c1, &["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"]);
        pause();
        let mut c2 = s.conn();
        send(&mut c2, &["BLMOVE", "b", "c", "LEFT", "RIGHT", "0"]);
        pause();
        let mut c3 = s.conn();
        send(&mut c3, &["BLMPOP", "0", "2", "x", "c", "LEFT", "COUNT", "5"]);
        pause();
        let mut p = s.conn();
        assert_eq!(p.raw(&["RPUSH", "a", "t"]), b":1\r\n", "{}", s.name);
        assert_eq!(read(&mut c1), b"$1\r\nt\r\n", "{}", s.name);
        assert_eq!(read(&mut c2), b"$1\r\nt\r\n", "{}", s.name);
        assert_eq!(read(&mut c3), b"*2\r\n$1\r\nc\r\n*1\r\n$1\r\nt\r\n", "{}", s.name);
        for k in ["a", "b", "c"] {
            assert_eq!(p.raw(&["LLEN", k]), b":0\r\n", "{}: {k}", s.name);
        }
    }
}
