//! What an operator sees, over HTTP on MariaDB, PostgreSQL, SQLite and
//! Redis: lifecycle events fire once each for their cause, the metrics
//! move as the README documents them (a test recorder installed as the
//! global one), and no token, store key, user or field value appears in
//! any span, log event or metric label (a capturing subscriber installed as
//! the global one). One test in this binary: the recorder and the
//! subscriber are process-wide.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, post, routes, State};
use session_rocket::events::{DestroyCause, EventKind, SessionEvent};
use session_rocket::store::{Changes, SessionStore, Validity};
use session_rocket::{metrics as names, Session, SessionError, Sessions, Token};

mod support;

/// A user id and a field value that must never reach a log or a label.
const USER: u64 = 424_242;
const DEVICE: &str = "secret-device-XYZ";

#[derive(Session)]
struct Account {
    #[session(index)]
    user_id: u64,
    device: String,
    #[session(versioned)]
    hits: u64,
}

#[post("/login")]
fn login(mut s: Session<Account>) -> &'static str {
    s.set_user_id(USER);
    s.set_device(DEVICE.into());
    s.regenerate();
    "ok"
}

#[get("/me")]
async fn me(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!("{} {}", s.user_id().await?, s.device().await?))
}

/// Two of these at once: both read `hits`, wait for each other, then both
/// write it; the second to save loses the race (409).
#[post("/race")]
async fn race(mut s: Session<Account>, gate: &State<Race>) -> Result<&'static str, SessionError> {
    s.hits().await?;
    gate.0.wait().await;
    *s.hits_mut().await? += 1;
    Ok("ok")
}

struct Race(tokio::sync::Barrier);

/// Reads, waits until the test lets it go, then writes.
#[post("/late-write")]
async fn late_write(
    mut s: Session<Account>,
    gate: &State<Late>,
) -> Result<&'static str, SessionError> {
    s.device().await?;
    gate.0.notified().await;
    s.set_device("late".into());
    Ok("ok")
}

struct Late(tokio::sync::Notify);

#[post("/logout")]
async fn logout(s: Session<Account>) -> Result<&'static str, SessionError> {
    s.destroy().await?;
    Ok("bye")
}

#[post("/logout-others")]
async fn logout_others(mut s: Session<Account>) -> Result<String, SessionError> {
    let user = *s.user_id().await?;
    Ok(s.destroy_other_sessions_by_user_id(&user)
        .await?
        .to_string())
}

// ---- a recorder of metrics ------------------------------------------------

#[derive(Default)]
struct Recorded {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// `name{label=value,…}`, labels sorted.
fn key_text(key: &metrics::Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct TestRecorder(Arc<Recorded>);

impl metrics::Recorder for TestRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut map = self.0.counters.lock().unwrap();
        metrics::Counter::from_arc(map.entry(key_text(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        let mut map = self.0.gauges.lock().unwrap();
        metrics::Gauge::from_arc(map.entry(key_text(key)).or_default().clone())
    }

    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let mut map = self.0.histograms.lock().unwrap();
        metrics::Histogram::from_arc(map.entry(key_text(key)).or_default().clone())
    }
}

impl Recorded {
    fn counter(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Relaxed))
    }

    fn gauge(&self, key: &str) -> Option<f64> {
        self.gauges
            .lock()
            .unwrap()
            .get(key)
            .map(|g| f64::from_bits(g.load(Relaxed)))
    }

    fn samples(&self, key: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
    }

    /// Every histogram key starting with `prefix`.
    fn histogram_keys(&self, prefix: &str) -> Vec<String> {
        let map = self.histograms.lock().unwrap();
        map.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn all_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.counters.lock().unwrap().keys().cloned().collect();
        keys.extend(self.gauges.lock().unwrap().keys().cloned());
        keys.extend(self.histograms.lock().unwrap().keys().cloned());
        keys
    }
}

// ---- a subscriber that keeps everything as text ----------------------------

#[derive(Default)]
struct Captured {
    text: Mutex<String>,
    spans: Mutex<Vec<String>>,
    next: AtomicU64,
}

struct Text<'a>(&'a mut String);

impl tracing::field::Visit for Text<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        let mut chain = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            chain.push_str(&format!(": {s}"));
            source = s.source();
        }
        self.0.push_str(&format!(" {}={}", field.name(), chain));
    }
}

struct Capture(Arc<Captured>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut line = format!("span {}", span.metadata().name());
        span.record(&mut Text(&mut line));
        self.0.text.lock().unwrap().push_str(&(line.clone() + "\n"));
        self.0.spans.lock().unwrap().push(line);
        tracing::span::Id::from_u64(self.0.next.fetch_add(1, Relaxed) + 1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = "record".to_string();
        values.record(&mut Text(&mut line));
        self.0.text.lock().unwrap().push_str(&(line.clone() + "\n"));
        self.0.spans.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("event {}", event.metadata().level());
        event.record(&mut Text(&mut line));
        self.0.text.lock().unwrap().push_str(&(line + "\n"));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// ---- the stores ---------------------------------------------------------------

async fn stores() -> Vec<Arc<dyn SessionStore>> {
    use session_rocket::store::{postgres::PgStore, redis::RedisStore};
    let config = |tag| session_rocket::Config {
        table_prefix: support::unique(tag),
        ..session_rocket::Config::default()
    };
    let pg_url = std::env::var("POSTGRES_URL").expect("POSTGRES_URL (see README)");
    let pg = PgStore::connect(&pg_url, &config("o"))
        .await
        .expect("PostgreSQL");
    pg.create_tables().await.unwrap();
    let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL (see README)");
    let redis = RedisStore::connect(&redis_url, &config("o"))
        .await
        .expect("Redis");
    vec![
        support::mysql().await,
        Arc::new(pg),
        support::sqlite().await,
        Arc::new(redis),
    ]
}

fn token_of(cookies: &[rocket::http::Cookie<'static>]) -> String {
    cookies
        .iter()
        .find(|c| c.name() == "session")
        .expect("a session cookie")
        .value()
        .to_string()
}

fn id_of(token: &str) -> session_rocket::SessionId {
    Token::parse(token).unwrap().store_key().id()
}

/// Waits until the handler has seen `n` events (bounded), then takes them.
async fn take(log: &Mutex<Vec<SessionEvent>>, n: usize) -> Vec<SessionEvent> {
    for _ in 0..500 {
        if log.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Anything more would arrive now: nothing may be reported twice.
    tokio::time::sleep(Duration::from_millis(30)).await;
    std::mem::take(&mut *log.lock().unwrap())
}

#[rocket::async_test]
async fn events_metrics_and_traces_on_every_server_store() {
    let recorded = Arc::new(Recorded::default());
    metrics::set_global_recorder(TestRecorder(recorded.clone())).expect("the only recorder");
    let captured = Arc::new(Captured::default());
    tracing::subscriber::set_global_default(Capture(captured.clone()))
        .expect("the only subscriber");

    let mut secrets: Vec<String> = vec![USER.to_string(), DEVICE.into()];
    for store in stores().await {
        let name = store.name();
        let log = Arc::new(Mutex::new(Vec::<SessionEvent>::new()));
        let sink = log.clone();
        let figment = support::figment().merge(("sessions.cleanup_interval", 1));
        let rocket = rocket::custom(figment)
            .attach(
                Sessions::with_shared_store(store.clone()).on_event(move |e| {
                    sink.lock().unwrap().push(e.clone());
                }),
            )
            .manage(Race(tokio::sync::Barrier::new(2)))
            .manage(Late(tokio::sync::Notify::new()))
            .mount(
                "/",
                routes![login, me, race, late_write, logout, logout_others],
            );
        let client = Client::untracked(rocket).await.expect("launch");
        let label = |metric: &str, extra: &str| format!("{metric}{{{extra}store={name}}}");

        // Created, then regenerated.
        let (status, cookies) = support::post(&client, "/login", None).await;
        assert_eq!(status, Status::Ok);
        let first = token_of(&cookies);
        let events = take(&log, 1).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            (&events[0].kind, events[0].session),
            (&EventKind::Created, id_of(&first))
        );
        assert_eq!(events[0].value::<u64>("user_id"), Some(USER), "{name}");
        assert_eq!(recorded.counter(&label(names::CREATED, "")), 1, "{name}");

        let (_, cookies) = support::post(&client, "/login", Some(&first)).await;
        let token = token_of(&cookies);
        let events = take(&log, 1).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            events[0].kind,
            EventKind::Regenerated {
                previous: id_of(&first)
            }
        );
        assert_eq!(events[0].session, id_of(&token));
        assert_eq!(
            recorded.counter(&label(names::REGENERATED, "")),
            1,
            "{name}"
        );

        // A read: one statement, its latency, the session's size.
        let before = recorded.samples(&label(names::STATEMENTS, "")).len();
        let (status, _, body) = support::get(&client, "/me", &token).await;
        assert_eq!(
            (status, body.as_str()),
            (Status::Ok, format!("{USER} {DEVICE}").as_str())
        );
        let statements = recorded.samples(&label(names::STATEMENTS, ""));
        assert_eq!(
            statements.len(),
            before + 1,
            "{name}: one sample per request"
        );
        assert_eq!(
            statements.last(),
            Some(&1.0),
            "{name}: a read is one statement"
        );
        assert!(
            recorded
                .samples(&label(names::SESSION_SIZE, ""))
                .iter()
                .any(|b| *b > 0.0),
            "{name}: the session's size"
        );
        let latencies = recorded.histogram_keys(names::STORE_DURATION);
        assert!(
            latencies
                .iter()
                .any(|k| k.contains(&format!("store={name}")) && k.contains("outcome=found")),
            "{name}: {latencies:?}"
        );
        assert!(
            !recorded.samples(&label(names::FIELD_SIZE, "")).is_empty(),
            "{name}: field sizes"
        );

        // Two requests racing on a versioned field: one 409, one event.
        let (a, b) = tokio::join!(
            client
                .post("/race")
                .cookie(("session", token.clone()))
                .dispatch(),
            client
                .post("/race")
                .cookie(("session", token.clone()))
                .dispatch()
        );
        let mut statuses = [a.status(), b.status()];
        drop((a, b));
        statuses.sort_by_key(|s| s.code);
        assert_eq!(statuses, [Status::Ok, Status::Conflict], "{name}");
        let events = take(&log, 1).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            (&events[0].kind, events[0].session),
            (&EventKind::Conflict, id_of(&token))
        );
        assert_eq!(recorded.counter(&label(names::CONFLICTS, "")), 1, "{name}");

        // "Log out everywhere" from a second device.
        let (_, cookies) = support::post(&client, "/login", None).await;
        let phone = token_of(&cookies);
        assert_eq!(take(&log, 1).await.len(), 1);
        let (status, _) = support::post(&client, "/logout-others", Some(&phone)).await;
        assert_eq!(status, Status::Ok);
        let events = take(&log, 1).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            events[0].kind,
            EventKind::Destroyed {
                cause: DestroyCause::Everywhere
            }
        );
        assert_eq!(events[0].session, id_of(&token));
        assert_eq!(events[0].value::<u64>("user_id"), Some(USER));
        assert_eq!(
            recorded.counter(&label(names::DESTROYED, "cause=everywhere,")),
            1,
            "{name}"
        );

        // A write in flight across a logout: refused (409), counted.
        let late = async {
            client
                .post("/late-write")
                .cookie(("session", phone.clone()))
                .dispatch()
                .await
                .status()
        };
        let logout = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (status, _) = support::post(&client, "/logout", Some(&phone)).await;
            client.rocket().state::<Late>().unwrap().0.notify_one();
            status
        };
        let (late, logout) = tokio::join!(late, logout);
        assert_eq!((late, logout), (Status::Conflict, Status::Ok), "{name}");
        let events = take(&log, 1).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            events[0].kind,
            EventKind::Destroyed {
                cause: DestroyCause::Request
            }
        );
        assert_eq!(events[0].session, id_of(&phone));
        assert_eq!(
            events[0].value::<u64>("user_id"),
            Some(USER),
            "{name}: read before the delete"
        );
        assert_eq!(
            recorded.counter(&label(names::DESTROYED, "cause=request,")),
            1,
            "{name}"
        );
        assert_eq!(
            recorded.counter(&label(names::REFUSED, "reason=ended,")),
            1,
            "{name}"
        );

        // A stored value that no longer decodes falls back, counted; its
        // decode error (which would quote the value) is logged redacted.
        let (_, cookies) = support::post(&client, "/login", None).await;
        let third = token_of(&cookies);
        assert_eq!(take(&log, 1).await.len(), 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = Validity {
            now,
            created_after: now - 86_400,
        };
        let wrong = format!("\"{DEVICE}\"").into_bytes();
        let changes = Changes {
            upsert: vec![("user_id", wrong)],
            ..Changes::default()
        };
        store
            .save(&Token::parse(&third).unwrap().store_key(), &changes, at)
            .await
            .unwrap();
        let fallbacks = recorded.counter(&format!("{}{{}}", names::DECODE_FALLBACKS));
        let (status, _, body) = support::get(&client, "/me", &third).await;
        assert_eq!((status, body), (Status::Ok, format!("0 {DEVICE}")));
        assert_eq!(
            recorded.counter(&format!("{}{{}}", names::DECODE_FALLBACKS)),
            fallbacks + 1
        );

        // Expired: found by the cleanup task (every second here), once.
        let dead = Token::generate().unwrap();
        let then = now - 86_400 - 60;
        let session = session_rocket::store::NewSession {
            created_at: then,
            expires_at: then + 86_400,
            idle_timeout: 86_400,
            persistent: None,
        };
        let user = format!("{USER}").into_bytes();
        assert!(store
            .create(&dead.store_key(), session, &[("user_id", user)])
            .await
            .unwrap());
        let events = take(&log, 1).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            (&events[0].kind, events[0].session),
            (&EventKind::Expired, dead.store_key().id())
        );
        assert_eq!(events[0].value::<u64>("user_id"), Some(USER), "{name}");
        assert_eq!(recorded.counter(&label(names::EXPIRED, "")), 1, "{name}");
        // Counted after the pass: the one left (the third login); on
        // Redis by the purge scripts as the pass walks the keyspace.
        for _ in 0..200 {
            if recorded.gauge(&label(names::LIVE, "")).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(recorded.gauge(&label(names::LIVE, "")), Some(1.0), "{name}");

        for token in [&first, &token, &phone, &third] {
            secrets.push(token.to_string());
            let key = Token::parse(token).unwrap().store_key();
            let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            secrets.push(hex[..16].to_string());
        }
        client.terminate().await;
    }

    // A lost connection: the read is sent again on a fresh one, counted.
    {
        use support::proxy::{self, Proxy, Wire};
        let url = support::database_url();
        let proxy = Proxy::start(proxy::upstream(&url, 3306), Wire::MySql).await;
        let config = session_rocket::Config {
            table_prefix: support::unique("o"),
            ..session_rocket::Config::default()
        };
        let store = session_rocket::store::mysql::MySqlStore::connect(&proxy.url(&url), &config)
            .await
            .expect("MySQL through the proxy");
        store.create_tables().await.unwrap();
        let rocket = rocket::custom(support::figment())
            .attach(Sessions::with_store(store))
            .manage(Race(tokio::sync::Barrier::new(2)))
            .manage(Late(tokio::sync::Notify::new()))
            .mount("/", routes![login, me]);
        let client = Client::untracked(rocket).await.expect("launch");
        let (_, cookies) = support::post(&client, "/login", None).await;
        let token = token_of(&cookies);
        let lost = format!("{}{{cause=lost,store=mysql}}", names::RETRIES);
        let before = recorded.counter(&lost);
        proxy.cut();
        let (status, _, _) = support::get(&client, "/me", &token).await;
        assert_eq!(
            status,
            Status::Ok,
            "the read is sent again on a fresh connection"
        );
        assert_eq!(recorded.counter(&lost), before + 1);
        secrets.push(token);
        client.terminate().await;
    }

    // Spans: one per store call, with the documented fields.
    let spans = captured.spans.lock().unwrap().clone();
    assert!(
        spans.iter().any(|s| s.starts_with("span session.store")
            && s.contains("db.system.name=mysql")
            && s.contains("db.operation.name=load")),
        "store-call spans: {spans:?}"
    );
    assert!(spans
        .iter()
        .any(|s| s.starts_with("record") && s.contains("statements=1")));
    assert!(spans
        .iter()
        .any(|s| s.starts_with("record") && s.contains("outcome=found")));
    // Nothing sensitive in any span, log event or metric label.
    let text = captured.text.lock().unwrap().clone();
    let labels = recorded.all_keys().join("\n");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "`{secret}` in a span or log:\n{text}"
        );
        assert!(
            !labels.contains(secret.as_str()),
            "`{secret}` in a metric label:\n{labels}"
        );
    }
}
