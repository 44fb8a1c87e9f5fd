//! A stand-in for a Heph node's net relay, for net-relay's interop tests.
//!
//! The envelope (`Message<M>`, with its hand-written reader that refuses unknown
//! and repeated keys), the uuid text and the uuid generator follow Heph's
//! remote/src/net_relay/{mod,uuid,udp,tcp}.rs at commit efa27498 (github
//! Thomasdezeeuw/heph, MIT licence), rewritten here: what matters is that the
//! bytes go through serde_json exactly as Heph's do (`serde_json::from_slice` of
//! one datagram, `serde_json::to_writer` of one envelope, envelopes back to back
//! on a TCP stream).
//!
//! Commands come on stdin, one JSON object a line; each answer is one JSON line
//! on stdout:
//!   {"op":"port"}                               -> {"port": N} (its UDP socket)
//!   {"op":"recv","case":C}                      -> the next datagram read as case C's type:
//!                                                  {"ok":true,"uuid":U,"value":V} or {"ok":false,"error":E}
//!   {"op":"send","case":C,"to":"IP:PORT"}       -> one datagram of case C's sample: {"sent":TEXT}
//!   {"op":"resend","to":"IP:PORT"}              -> the last datagram again, as a network
//!                                                  that duplicates would: {"sent":TEXT}
//!   {"op":"tcp_send","cases":[C..],"to":"IP:PORT"} -> connects, writes the envelopes back to
//!                                                  back, closes: {"sent":[TEXT..]}
//!   {"op":"tcp_talk","cases":[C..],"read":[R..],"to":"IP:PORT"} -> connects, writes the
//!                                                  envelopes, then reads one bare message of
//!                                                  each case R's type on that connection, as
//!                                                  Heph's tcp relay reads its answers:
//!                                                  {"sent":[TEXT..],"read":[{"ok":..,"value":V}..]}
//! With `--fallback-seed` the uuids come from the constant seed Heph uses when
//! getrandom fails, so two such peers send the same uuids.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::marker::PhantomData;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const MAX_PACKET_SIZE: usize = 1 << 16;

// --- the envelope, read and written as Heph does --------------------------------------

struct Message<M> {
    uuid: Uuid,
    msg: M,
}

impl<M: Serialize> Serialize for Message<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Message", 2)?;
        state.serialize_field("uuid", &self.uuid)?;
        state.serialize_field("message", &self.msg)?;
        state.end()
    }
}

enum Field {
    Uuid,
    Msg,
}

const FIELDS: &[&str] = &["uuid", "message"];

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct FieldName;
        impl<'de> Visitor<'de> for FieldName {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`uuid` or `message`")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                match name {
                    "uuid" => Ok(Field::Uuid),
                    "message" => Ok(Field::Msg),
                    other => Err(E::unknown_field(other, FIELDS)),
                }
            }
        }
        deserializer.deserialize_identifier(FieldName)
    }
}

impl<'de, M: Deserialize<'de>> Deserialize<'de> for Message<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Envelope<M>(PhantomData<M>);
        impl<'de, M: Deserialize<'de>> Visitor<'de> for Envelope<M> {
            type Value = Message<M>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct Message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<M>, A::Error> {
                let (mut uuid, mut msg) = (None, None);
                while let Some(field) = map.next_key()? {
                    match field {
                        Field::Uuid if uuid.is_some() => return Err(de::Error::duplicate_field("uuid")),
                        Field::Uuid => uuid = Some(map.next_value()?),
                        Field::Msg if msg.is_some() => return Err(de::Error::duplicate_field("message")),
                        Field::Msg => msg = Some(map.next_value()?),
                    }
                }
                Ok(Message {
                    uuid: uuid.ok_or_else(|| de::Error::missing_field("uuid"))?,
                    msg: msg.ok_or_else(|| de::Error::missing_field("message"))?,
                })
            }
        }
        deserializer.deserialize_struct("Message", FIELDS, Envelope(PhantomData))
    }
}

// --- Heph's uuid: 16 bytes, written hyphenated in lower case, read as 32 or 36 hex digits --

#[derive(Clone, Copy)]
struct Uuid([u8; 16]);

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
        struct UuidText;
        impl<'de> Visitor<'de> for UuidText {
            type Value = Uuid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("UUID string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Uuid, E> {
                let digits: Vec<u8> = match text.len() {
                    32 => text.bytes().collect(),
                    36 => {
                        let bytes = text.as_bytes();
                        if [8, 13, 18, 23].iter().any(|&at| bytes[at] != b'-') {
                            return Err(E::invalid_value(de::Unexpected::Str(text), &self));
                        }
                        bytes.iter().copied().filter(|&b| b != b'-').collect()
                    }
                    n => return Err(E::invalid_length(n, &"32 or 36 bytes")),
                };
                let mut out = [0u8; 16];
                for (slot, pair) in out.iter_mut().zip(digits.chunks(2)) {
                    let pair = std::str::from_utf8(pair).ok().filter(|p| p.len() == 2);
                    *slot = pair
                        .and_then(|p| u8::from_str_radix(p, 16).ok())
                        .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))?;
                }
                Ok(Uuid(out))
            }
        }
        deserializer.deserialize_str(UuidText)
    }
}

/// Heph's generator: two 64-bit counters, the uuid made of both with the
/// version and variant bits set; the seed is random, or constant when
/// getrandom fails.
struct UuidGenerator(u64, u64);

impl UuidGenerator {
    fn new(fallback_seed: bool) -> UuidGenerator {
        if fallback_seed {
            return UuidGenerator(9396178701149223067, 6169990013871724815);
        }
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut file| file.read_exact(&mut bytes))
            .expect("/dev/urandom");
        let (high, low) = bytes.split_at(8);
        UuidGenerator(
            u64::from_be_bytes(high.try_into().unwrap()),
            u64::from_be_bytes(low.try_into().unwrap()),
        )
    }

    fn next(&mut self) -> Uuid {
        let (high, low) = (self.0, self.1);
        self.0 = self.0.wrapping_add(self.1);
        self.1 = self.1.wrapping_add(92478483931537517);
        let mut bytes = (u128::from(low) + (u128::from(high) << 64)).to_ne_bytes();
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        bytes[6] = (bytes[6] & 0x0f) | (4 << 4);
        Uuid(bytes)
    }
}

// --- the message types of the edge cases ----------------------------------------------

#[derive(Serialize, Deserialize)]
struct Greeting {
    name: String,
    lang: String,
}

#[derive(Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle { r: f64 },
    Square(f64),
    Pair(i32, i32),
}

/// The datagram (or stream object) of one envelope holding `msg`.
fn envelope<M: Serialize>(uuids: &mut UuidGenerator, msg: M) -> Vec<u8> {
    let mut buf = Vec::new();
    serde_json::to_writer(&mut buf, &Message { uuid: uuids.next(), msg }).expect("serialise");
    buf
}

/// `count` finite floats of every magnitude: bit patterns from a 64-bit LCG (Knuth's
/// MMIX constants, starting at 1), NaNs and infinities skipped.
fn floats_from_bits(count: usize) -> Vec<f64> {
    let mut state = 1u64;
    std::iter::from_fn(|| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Some(f64::from_bits(state))
    })
    .filter(|f| f.is_finite())
    .take(count)
    .collect()
}

fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(0), |inner, _| Value::Array(vec![inner]))
}

/// Case `name`'s sample in an envelope, or None for an unknown case.
fn sample(name: &str, uuids: &mut UuidGenerator) -> Option<Vec<u8>> {
    Some(match name {
        "struct" => envelope(uuids, Greeting { name: "ada".into(), lang: "en".into() }),
        "enums" => envelope(
            uuids,
            vec![Shape::Empty, Shape::Circle { r: 1.5 }, Shape::Square(2.0), Shape::Pair(1, -2)],
        ),
        "bytes" => envelope(uuids, vec![0u8, 1, 127, 255]),
        "unit" => envelope(uuids, ()),
        "u64_max" => envelope(uuids, u64::MAX),
        "i64_min" => envelope(uuids, i64::MIN),
        "u128_big" => envelope(uuids, (1u128 << 64) + 1),
        "u128_max" => envelope(uuids, u128::MAX),
        "i128_min" => envelope(uuids, i128::MIN),
        "large" => envelope(uuids, "x".repeat(65_000)),
        "text" => envelope(uuids, "Zoë \u{1F600} \"quoted\" {braces}"),
        "f64" => envelope(uuids, 2.5f64),
        "f64_bits" => envelope(uuids, floats_from_bits(1000)),
        // serde_json writes any depth, though it reads at most 127 levels, envelope included.
        "deep_126" => envelope(uuids, nested(126)),
        "deep_127" => envelope(uuids, nested(127)),
        "deep_256" => envelope(uuids, nested(256)),
        _ => return None,
    })
}

/// Decode `datagram` as Heph's `from_slice::<Message<M>>` would, with M named by `case`;
/// the decoded message is written back as JSON to be compared.
fn decode(case: &str, datagram: &[u8]) -> Result<(Uuid, Value), String> {
    fn read<M: DeserializeOwned + Serialize>(data: &[u8]) -> Result<(Uuid, Value), String> {
        let message: Message<M> = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        let value = serde_json::to_value(&message.msg).map_err(|e| e.to_string())?;
        Ok((message.uuid, value))
    }
    fn read_exact_text<M: DeserializeOwned + Serialize>(data: &[u8]) -> Result<(Uuid, Value), String> {
        // Integers beyond 64 bits become a JSON string of their digits, so nothing rounds them.
        let message: Message<M> = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        let text = serde_json::to_string(&message.msg).map_err(|e| e.to_string())?;
        Ok((message.uuid, Value::String(text)))
    }
    match case {
        "struct" => read::<Greeting>(datagram),
        "enums" => read::<Vec<Shape>>(datagram),
        "bytes" => read::<Vec<u8>>(datagram),
        "unit" => read::<()>(datagram),
        "u64_max" => read::<u64>(datagram),
        "i64_min" => read::<i64>(datagram),
        "u128" => read_exact_text::<u128>(datagram),
        "i128" => read_exact_text::<i128>(datagram),
        "f64" => read::<f64>(datagram),
        "string" => read::<String>(datagram),
        _ => read::<Value>(datagram),
    }
}

/// The next bare message of `case`'s type at the start of `buf`, read as Heph's tcp relay
/// reads (a `StreamDeserializer` of `M`, tcp.rs `route_messages`), and the bytes it took;
/// None while `buf` holds only part of it.
fn next_bare(case: &str, buf: &[u8]) -> Option<Result<(Value, usize), String>> {
    fn read<M: DeserializeOwned + Serialize>(buf: &[u8]) -> Option<Result<(Value, usize), String>> {
        let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<M>();
        match values.next()? {
            Ok(message) => Some(
                serde_json::to_value(&message)
                    .map(|value| (value, values.byte_offset()))
                    .map_err(|e| e.to_string()),
            ),
            // Only part of a message so far. Heph's relay would stop with an error here (it
            // counts on whole messages per read); this peer reads on, to test the format.
            Err(error) if error.is_eof() => None,
            Err(error) => Some(Err(error.to_string())),
        }
    }
    fn read_exact_text<M: DeserializeOwned + Serialize>(buf: &[u8]) -> Option<Result<(Value, usize), String>> {
        let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<M>();
        match values.next()? {
            Ok(message) => Some(
                serde_json::to_string(&message)
                    .map(|text| (Value::String(text), values.byte_offset()))
                    .map_err(|e| e.to_string()),
            ),
            Err(error) if error.is_eof() => None,
            Err(error) => Some(Err(error.to_string())),
        }
    }
    match case {
        "struct" => read::<Greeting>(buf),
        "enums" => read::<Vec<Shape>>(buf),
        "bytes" => read::<Vec<u8>>(buf),
        "unit" => read::<()>(buf),
        "u64_max" => read::<u64>(buf),
        "i64_min" => read::<i64>(buf),
        "u128" => read_exact_text::<u128>(buf),
        "i128" => read_exact_text::<i128>(buf),
        "f64" => read::<f64>(buf),
        "string" => read::<String>(buf),
        _ => read::<Value>(buf),
    }
}

/// Read one bare message of `case`'s type from `stream`, keeping what follows it in `buf`.
fn read_bare(stream: &mut TcpStream, buf: &mut Vec<u8>, case: &str) -> Result<Value, String> {
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        // Whitespace between messages is skipped, as the StreamDeserializer skips it.
        let start = buf.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(buf.len());
        if start < buf.len() {
            if let Some(outcome) = next_bare(case, &buf[start..]) {
                let (value, used) = outcome?;
                buf.drain(..start + used);
                return Ok(value);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the connection closed".into()),
            Ok(size) => buf.extend_from_slice(&chunk[..size]),
            Err(error) => return Err(format!("no bare message: {error}")),
        }
    }
}

fn main() {
    let fallback_seed = std::env::args().any(|arg| arg == "--fallback-seed");
    let mut uuids = UuidGenerator::new(fallback_seed);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
    socket.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut out = io::stdout().lock();
    let mut last = Vec::new();
    for line in io::stdin().lock().lines() {
        let command: Value = serde_json::from_str(&line.expect("stdin")).expect("a JSON command");
        let text = |field: &str| command[field].as_str().unwrap_or_default().to_owned();
        let answer = match text("op").as_str() {
            "port" => json!({"port": socket.local_addr().expect("address").port()}),
            "recv" => {
                let mut buf = vec![0u8; MAX_PACKET_SIZE];
                match socket.recv_from(&mut buf) {
                    Ok((size, _)) => match decode(&text("case"), &buf[..size]) {
                        Ok((uuid, value)) => json!({"ok": true, "uuid": uuid.to_string(), "value": value}),
                        Err(error) => json!({"ok": false, "error": error}),
                    },
                    Err(error) => json!({"ok": false, "error": format!("no datagram: {error}")}),
                }
            }
            "send" => {
                match sample(&text("case"), &mut uuids) {
                    Some(datagram) => {
                        socket.send_to(&datagram, text("to")).expect("send a datagram");
                        last = datagram;
                        json!({"sent": String::from_utf8(last.clone()).unwrap()})
                    }
                    None => json!({"error": format!("unknown command {line:?}", line = command)}),
                }
            }
            "resend" => {
                socket.send_to(&last, text("to")).expect("send a datagram");
                json!({"sent": String::from_utf8(last.clone()).unwrap()})
            }
            "tcp_send" => {
                let mut stream = TcpStream::connect(text("to")).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut sent = Vec::new();
                for case in command["cases"].as_array().into_iter().flatten() {
                    let object = sample(case.as_str().unwrap_or_default(), &mut uuids).expect("a case");
                    stream.write_all(&object).expect("write");
                    sent.push(String::from_utf8(object).unwrap());
                }
                json!({"sent": sent})
            }
            "tcp_talk" => {
                let mut stream = TcpStream::connect(text("to")).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                stream.set_read_timeout(Some(WAIT)).expect("read timeout");
                let mut sent = Vec::new();
                for case in command["cases"].as_array().into_iter().flatten() {
                    let object = sample(case.as_str().unwrap_or_default(), &mut uuids).expect("a case");
                    stream.write_all(&object).expect("write");
                    sent.push(String::from_utf8(object).unwrap());
                }
                let mut buf = Vec::new();
                let mut read = Vec::new();
                for case in command["read"].as_array().into_iter().flatten() {
                    read.push(match read_bare(&mut stream, &mut buf, case.as_str().unwrap_or_default()) {
                        Ok(value) => json!({"ok": true, "value": value}),
                        Err(error) => json!({"ok": false, "error": error}),
                    });
                }
                json!({"sent": sent, "read": read})
            }
            _ => json!({"error": format!("unknown command {command}")}),
        };
        writeln!(out, "{answer}").and_then(|()| out.flush()).expect("stdout");
    }
}
