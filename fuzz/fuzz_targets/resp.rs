//! The Redis client's reply decoding: the header scan that enforces the client's limits,
//! then `redis-protocol`'s decoder, run over a read buffer as the client runs them.
//!
//! The input's first byte picks the mode and the protocol, the second the bulk limit;
//! then come the split points and the rest.
//!
//! Properties:
//! - nothing panics, for any bytes;
//! - bounded by the client's limits: no bulk string and no aggregate longer than the
//!   limit, no nesting deeper than `MAX_DEPTH`, nothing read past the input; the bytes
//!   left after the whole replies are an incomplete reply (a violation stops the reading);
//! - the replies, the bytes they take and the violation are the same whether the bytes
//!   come in one piece or split at any points (the client reads whatever has arrived and
//!   keeps the rest);
//! - values encoded by `redis-protocol`'s own encoders (RESP2 and RESP3) decode to the
//!   values they were made from, in one piece and in pieces, and too deep a value is
//!   `TooDeep`; a decoded reply re-encoded decodes to the same value;
//! - a command encoded by the client reads back as an array of its arguments.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ioloop::fuzzing::redis::{
    decode_replies, encode_command, frame_len, ProtocolError, Value, MAX_DEPTH,
};
use libfuzzer_sys::fuzz_target;
use redis_protocol::resp2::types::{OwnedFrame as Resp2, Resp2Frame as _};
use redis_protocol::resp3::types::{
    FrameMap, FrameSet, OwnedFrame as Resp3, Resp3Frame as _, VerbatimStringFormat,
};

/// The client's default bulk limit (Redis's `proto-max-bulk-len`).
const DEFAULT_MAX_BULK: usize = 512 << 20;

/// The replies of `bytes` as the client reads them when they arrive up to each cut in
/// turn: the values, the bytes they took, the violation that stopped the reading.
fn read_in_pieces(
    bytes: &[u8],
    cuts: &[usize],
    max_bulk: usize,
    resp3: bool,
) -> (Vec<Value>, usize, Option<ProtocolError>) {
    let mut values = Vec::new();
    let mut used = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let buffered = &bytes[used..cut.max(used)];
        let (more, n, error) = decode_replies(buffered, max_bulk, resp3);
        assert!(n <= buffered.len(), "read past the buffer");
        values.extend(more);
        used += n;
        if error.is_some() {
            return (values, used, error);
        }
    }
    (values, used, None)
}

/// Equality with doubles compared by their bits (NaN equals NaN).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::Array(x), Value::Array(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::Push(x), Value::Push(y)) => all_same(x, y),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

fn all_same(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

/// Checks a decoded value against the limits: its nesting (non-empty aggregates inside
/// one another) is at most `MAX_DEPTH`, no bulk or aggregate is longer than `max_bulk`.
fn check_bounded(v: &Value, max_bulk: usize, depth: usize) {
    assert!(depth <= MAX_DEPTH, "nested deeper than MAX_DEPTH: {depth}");
    match v {
        Value::Bulk(b) => assert!(b.len() <= max_bulk, "a bulk of {} over {max_bulk}", b.len()),
        Value::Array(a) | Value::Set(a) | Value::Push(a) => {
            assert!(
                a.len() <= max_bulk,
                "an aggregate of {} over {max_bulk}",
                a.len()
            );
            for e in a {
                check_bounded(e, max_bulk, depth + 1);
            }
        }
        Value::Map(m) => {
            assert!(m.len() <= max_bulk, "a map of {} over {max_bulk}", m.len());
            for (k, e) in m {
                check_bounded(k, max_bulk, depth + 1);
                check_bounded(e, max_bulk, depth + 1);
            }
        }
        _ => {}
    }
}

/// Nesting of non-empty aggregates, as the header scan counts it.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) | Value::Set(a) | Value::Push(a) if !a.is_empty() => {
            1 + a.iter().map(depth).max().unwrap_or(0)
        }
        Value::Map(m) if !m.is_empty() => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// A value to encode, generated from the input.
#[derive(Arbitrary, Debug)]
enum Gen {
    Nil,
    Int(i64),
    Status(String),
    Bulk(Vec<u8>),
    Verbatim(bool, Vec<u8>),
    Array(Vec<Gen>),
    Map(Vec<(Key, Gen)>),
    Set(Vec<Key>),
    Double(f64),
    Bool(bool),
    BigNumber(u128, bool),
    Push(Vec<Gen>),
    Error(String),
}

/// A map key or set element (the crate hashes them; it refuses aggregates as keys).
#[derive(Arbitrary, Debug)]
enum Key {
    Int(i64),
    Status(String),
    Bulk(Vec<u8>),
}

/// A simple string's text: no CR or LF.
fn simple(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn key_frame(k: &Key) -> (Resp3, Value) {
    match k {
        Key::Int(i) => (
            Resp3::Number {
                data: *i,
                attributes: None,
            },
            Value::Int(*i),
        ),
        Key::Status(s) => {
            let s = simple(s);
            (
                Resp3::SimpleString {
                    data: s.clone().into_bytes(),
                    attributes: None,
                },
                Value::Status(s),
            )
        }
        Key::Bulk(b) => (
            Resp3::BlobString {
                data: b.clone(),
                attributes: None,
            },
            Value::Bulk(b.clone()),
        ),
    }
}

/// The RESP3 frame for `g` and the value the client must decode it to.
fn resp3(g: &Gen) -> (Resp3, Value) {
    let list = |items: &[Gen]| -> (Vec<Resp3>, Vec<Value>) { items.iter().map(resp3).unzip() };
    match g {
        Gen::Nil => (Resp3::Null, Value::Nil),
        Gen::Int(i) => (
            Resp3::Number {
                data: *i,
                attributes: None,
            },
            Value::Int(*i),
        ),
        Gen::Status(s) => key_frame(&Key::Status(s.clone())),
        Gen::Bulk(b) => key_frame(&Key::Bulk(b.clone())),
        Gen::Verbatim(markdown, b) => (
            Resp3::VerbatimString {
                data: b.clone(),
                format: if *markdown {
                    VerbatimStringFormat::Markdown
                } else {
                    VerbatimStringFormat::Text
                },
                attributes: None,
            },
            Value::Bulk(b.clone()),
        ),
        Gen::Array(items) => {
            let (frames, values) = list(items);
            (
                Resp3::Array {
                    data: frames,
                    attributes: None,
                },
                Value::Array(values),
            )
        }
        Gen::Push(items) => {
            let (frames, values) = list(items);
            (
                Resp3::Push {
                    data: frames,
                    attributes: None,
                },
                Value::Push(values),
            )
        }
        Gen::Map(pairs) => {
            let mut map = FrameMap::new();
            let mut values: Vec<(Value, Value)> = Vec::new();
            for (k, v) in pairs {
                let (kf, kv) = key_frame(k);
                if values.iter().any(|(seen, _)| *seen == kv) {
                    continue; // keys are distinct in a map
                }
                let (vf, vv) = resp3(v);
                map.insert(kf, vf);
                values.push((kv, vv));
            }
            (
                Resp3::Map {
                    data: map,
                    attributes: None,
                },
                Value::Map(values),
            )
        }
        Gen::Set(items) => {
            let mut set = FrameSet::new();
            let mut values: Vec<Value> = Vec::new();
            for k in items {
                let (kf, kv) = key_frame(k);
                if values.contains(&kv) {
                    continue;
                }
                set.insert(kf);
                values.push(kv);
            }
            (
                Resp3::Set {
                    data: set,
                    attributes: None,
                },
                Value::Set(values),
            )
        }
        Gen::Double(d) => (
            Resp3::Double {
                data: *d,
                attributes: None,
            },
            Value::Double(*d),
        ),
        Gen::Bool(b) => (
            Resp3::Boolean {
                data: *b,
                attributes: None,
            },
            Value::Bool(*b),
        ),
        Gen::BigNumber(n, negative) => {
            let digits = format!("{}{n}", if *negative { "-" } else { "" });
            (
                Resp3::BigNumber {
                    data: digits.clone().into_bytes(),
                    attributes: None,
                },
                Value::BigNumber(digits),
            )
        }
        Gen::Error(e) => (
            Resp3::BlobError {
                data: e.clone().into_bytes(),
                attributes: None,
            },
            Value::Error(e.clone()),
        ),
    }
}

/// The RESP2 frame for `g` (RESP3-only types become their nearest RESP2 form) and the
/// value the client must decode it to.
fn resp2(g: &Gen) -> (Resp2, Value) {
    let array = |items: Vec<(Resp2, Value)>| {
        let (frames, values): (Vec<Resp2>, Vec<Value>) = items.into_iter().unzip();
        (Resp2::Array(frames), Value::Array(values))
    };
    let bulk = |b: Vec<u8>| (Resp2::BulkString(b.clone()), Value::Bulk(b));
    match g {
        Gen::Nil => (Resp2::Null, Value::Nil),
        Gen::Int(i) => (Resp2::Integer(*i), Value::Int(*i)),
        Gen::Bool(b) => (Resp2::Integer(i64::from(*b)), Value::Int(i64::from(*b))),
        Gen::Status(s) => {
            let s = simple(s);
            (
                Resp2::SimpleString(s.clone().into_bytes()),
                Value::Status(s),
            )
        }
        Gen::Error(e) => {
            let e = simple(e);
            (Resp2::Error(e.clone()), Value::Error(e))
        }
        Gen::Bulk(b) | Gen::Verbatim(_, b) => bulk(b.clone()),
        Gen::Double(d) => bulk(d.to_string().into_bytes()),
        Gen::BigNumber(n, _) => bulk(n.to_string().into_bytes()),
        Gen::Array(items) | Gen::Push(items) => array(items.iter().map(resp2).collect()),
        Gen::Map(pairs) => array(
            pairs
                .iter()
                .flat_map(|(k, v)| [resp2(&key_gen(k)), resp2(v)])
                .collect(),
        ),
        Gen::Set(items) => array(items.iter().map(|k| resp2(&key_gen(k))).collect()),
    }
}

fn gen_depth(g: &Gen) -> usize {
    match g {
        Gen::Array(items) | Gen::Push(items) => 1 + items.iter().map(gen_depth).max().unwrap_or(0),
        Gen::Map(pairs) => 1 + pairs.iter().map(|(_, v)| gen_depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn key_gen(k: &Key) -> Gen {
    match k {
        Key::Int(i) => Gen::Int(*i),
        Key::Status(s) => Gen::Status(s.clone()),
        Key::Bulk(b) => Gen::Bulk(b.clone()),
    }
}

fn encode3(frame: &Resp3, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + frame.encode_len(false), 0);
    let n = redis_protocol::resp3::encode::complete::encode(&mut out[at..], frame, false)
        .expect("the encoder encodes into a buffer of its own encode_len");
    out.truncate(at + n);
}

fn encode2(frame: &Resp2, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + frame.encode_len(false), 0);
    let n = redis_protocol::resp2::encode::encode(&mut out[at..], frame, false)
        .expect("the encoder encodes into a buffer of its own encode_len");
    out.truncate(at + n);
}

/// A decoded value back as a frame (`None` where the protocol cannot say it again: a
/// RESP2 error holding CR or LF, a RESP3-only value on RESP2).
fn reencode(v: &Value, resp3: bool, out: &mut Vec<u8>) -> Option<()> {
    if resp3 {
        encode3(&frame3(v)?, out);
    } else {
        encode2(&frame2(v)?, out);
    }
    Some(())
}

fn frame3(v: &Value) -> Option<Resp3> {
    let list = |a: &[Value]| a.iter().map(frame3).collect::<Option<Vec<_>>>();
    Some(match v {
        Value::Nil => Resp3::Null,
        Value::Int(i) => Resp3::Number {
            data: *i,
            attributes: None,
        },
        Value::Status(s) => Resp3::SimpleString {
            data: s.clone().into_bytes(),
            attributes: None,
        },
        Value::Bulk(b) => Resp3::BlobString {
            data: b.clone(),
            attributes: None,
        },
        Value::Error(e) => Resp3::BlobError {
            data: e.clone().into_bytes(),
            attributes: None,
        },
        Value::Array(a) => Resp3::Array {
            data: list(a)?,
            attributes: None,
        },
        Value::Push(a) => Resp3::Push {
            data: list(a)?,
            attributes: None,
        },
        Value::Set(a) => {
            let frames = list(a)?;
            let n = frames.len();
            let set: FrameSet<Resp3> = frames.into_iter().collect();
            if set.len() != n {
                return None; // elements equal as frames but told apart as values
            }
            Resp3::Set {
                data: set,
                attributes: None,
            }
        }
        Value::Map(m) => {
            let mut map = FrameMap::new();
            for (k, e) in m {
                if map.insert(frame3(k)?, frame3(e)?).is_some() {
                    return None;
                }
            }
            Resp3::Map {
                data: map,
                attributes: None,
            }
        }
        Value::Double(d) => Resp3::Double {
            data: *d,
            attributes: None,
        },
        Value::Bool(b) => Resp3::Boolean {
            data: *b,
            attributes: None,
        },
        Value::BigNumber(n) => Resp3::BigNumber {
            data: n.clone().into_bytes(),
            attributes: None,
        },
    })
}

fn frame2(v: &Value) -> Option<Resp2> {
    Some(match v {
        Value::Nil => Resp2::Null,
        Value::Int(i) => Resp2::Integer(*i),
        Value::Status(s) => Resp2::SimpleString(s.clone().into_bytes()),
        Value::Bulk(b) => Resp2::BulkString(b.clone()),
        Value::Error(e) if !e.contains(['\r', '\n']) => Resp2::Error(e.clone()),
        Value::Array(a) => Resp2::Array(a.iter().map(frame2).collect::<Option<_>>()?),
        _ => return None,
    })
}

/// The split points: `n` offsets into `len + 1`, in order.
fn cuts(u: &mut Unstructured<'_>, len: usize) -> Vec<usize> {
    let n = u.int_in_range(0..=8u8).unwrap_or(0);
    let mut cuts: Vec<usize> = (0..n)
        .map(|_| usize::from(u.arbitrary::<u16>().unwrap_or(0)) % (len + 1))
        .collect();
    cuts.sort_unstable();
    cuts
}

/// Any bytes off the wire.
fn wire(resp3: bool, max_bulk: usize, split: &[u8], bytes: &[u8]) {
    let (values, used, error) = decode_replies(bytes, max_bulk, resp3);
    assert!(used <= bytes.len());
    for v in &values {
        check_bounded(v, max_bulk, 0);
    }
    if error.is_none() {
        assert_eq!(
            frame_len(&bytes[used..], max_bulk),
            Ok(None),
            "the bytes left are not an incomplete reply"
        );
    }
    let cuts = cuts(&mut Unstructured::new(split), bytes.len());
    let (values2, used2, error2) = read_in_pieces(bytes, &cuts, max_bulk, resp3);
    assert!(
        all_same(&values, &values2) && used == used2 && error == error2,
        "in pieces at {cuts:?}: {values2:?} {used2} {error2:?}, at once: {values:?} {used} {error:?}"
    );
    // A value decoded re-encodes to bytes that decode to it again.
    for v in &values {
        let mut again = Vec::new();
        if reencode(v, resp3, &mut again).is_some() {
            let (back, n, e) = decode_replies(&again, usize::MAX, resp3);
            assert!(
                e.is_none() && n == again.len() && all_same(&back, std::slice::from_ref(v)),
                "{v:?} re-encoded as {:?} decodes to {back:?} {e:?}",
                String::from_utf8_lossy(&again)
            );
        }
    }
}

/// Values made by `redis-protocol`'s encoders.
fn encoded(resp3_mode: bool, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let gens: Vec<Gen> = u.arbitrary()?;
    if gens.iter().any(|g| gen_depth(g) > 2 * MAX_DEPTH) {
        return Ok(()); // keeps this target's own recursion (and the encoder's) short
    }
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for g in &gens {
        let value = if resp3_mode {
            let (frame, value) = resp3(g);
            encode3(&frame, &mut bytes);
            value
        } else {
            let (frame, value) = resp2(g);
            encode2(&frame, &mut bytes);
            value
        };
        expected.push(value);
    }
    let cuts = cuts(u, bytes.len());
    let (values, used, error) = read_in_pieces(&bytes, &cuts, DEFAULT_MAX_BULK, resp3_mode);
    // Up to the first value too deep for the client, every value reads back.
    let fine = expected
        .iter()
        .position(|v| depth(v) > MAX_DEPTH)
        .unwrap_or(expected.len());
    assert!(
        all_same(&values, &expected[..fine]),
        "encoded {:?}\nexpected {:?}\ndecoded {values:?} {error:?}",
        String::from_utf8_lossy(&bytes),
        &expected[..fine]
    );
    if fine < expected.len() {
        assert_eq!(error, Some(ProtocolError::TooDeep));
    } else {
        assert_eq!((used, error), (bytes.len(), None));
    }
    Ok(())
}

/// A command as the client writes it.
fn command(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let args: Vec<&[u8]> = u.arbitrary()?;
    let mut out = Vec::new();
    encode_command(&mut out, &args);
    for resp3 in [false, true] {
        let (values, used, error) = decode_replies(&out, DEFAULT_MAX_BULK, resp3);
        assert_eq!((used, error), (out.len(), None));
        let expected = Value::Array(args.iter().map(|a| Value::Bulk(a.to_vec())).collect());
        assert_eq!(values, vec![expected]);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    // [mode] [max bulk] [split bytes: 17] [the rest]
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let resp3 = mode & 1 == 1;
    match (mode >> 1) % 4 {
        0 | 1 => {
            let Some((&max, rest)) = rest.split_first() else {
                return;
            };
            let (split, bytes) = rest.split_at(rest.len().min(17));
            let max_bulk = if max == 0xff {
                DEFAULT_MAX_BULK
            } else {
                usize::from(max)
            };
            wire(resp3, max_bulk, split, bytes);
        }
        2 => {
            let _ = encoded(resp3, &mut Unstructured::new(rest));
        }
        _ => {
            let _ = command(&mut Unstructured::new(rest));
        }
    }
});
