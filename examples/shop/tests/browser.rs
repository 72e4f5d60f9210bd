//! The shop end to end in a real browser: Debian's headless Chromium driven
//! through chromedriver (WebDriver), against the shop launched in-process on
//! a free port. The same scenario runs on SQLite (a temporary file) and on
//! MySQL/MariaDB (the `mysql` profile of `Rocket.toml`, with a table prefix
//! of its own that is dropped afterwards).
//!
//! Nothing here is skipped: a missing `chromium`, `chromedriver` or MySQL
//! server fails the test with a message saying what to install or start
//! (`.ci/browser` installs the browser, `.ci/run` starts MariaDB).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use rocket::figment::Figment;
use rocket::http::SameSite;
use serde_json::json;
use session_rocket::sqlx::{self, Connection as _};
use session_rocket::Sessions;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "install them with `apt-get install -y chromium chromium-driver` \
     (`.ci/browser` does this in CI)";
/// How long a page element may take to appear.
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- helpers

/// A value no other run of this test picks: table prefixes, temp dirs.
fn unique() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// A free port on loopback: bind port 0, read the port, let it go. (Rocket
/// 0.5 cannot listen on port 0 and report the port it got.)
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on 127.0.0.1:{port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("shop-e2e-{label}-{}", unique()));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// chromedriver, ended when dropped, also when the test fails.
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
    /// The browser's profile directory: the browser processes are found by
    /// it if chromedriver leaves any behind.
    profile: PathBuf,
}

impl Chromedriver {
    fn start(dir: &Path) -> Self {
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing (Debian package `{package}`): the browser test needs \
                 chromium and chromedriver; {INSTALL_HINT}"
            );
        }
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}; {INSTALL_HINT}"));
        let driver = Chromedriver {
            child,
            port,
            log,
            profile: dir.join("profile"),
        };
        wait_for_port(port, "chromedriver");
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn connect(&self) -> Client {
        std::fs::create_dir_all(&self.profile).unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start {CHROMIUM}: {e}\nchromedriver log {}:\n{}",
                    self.log.display(),
                    tail(&self.log)
                )
            })
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Ask chromedriver to quit its browsers and exit; kill it if it
        // does not within 3 s.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Browser processes chromedriver left behind: the ones started on
        // this run's own profile directory, by process id.
        let marker = format!("--user-data-dir={}", self.profile.display());
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&marker) {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "chromedriver log {} (last lines):\n{}",
                self.log.display(),
                tail(&self.log)
            );
        }
    }
}

/// Where the scenario finds the shop, and the cookie flag it expects.
#[derive(Clone)]
struct Target {
    base: String,
    secure: bool,
    /// The store's name, as the metrics label it.
    store: String,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The shop, launched in-process on a free port.
struct Shop {
    target: Target,
    shutdown: rocket::Shutdown,
    task: tokio::task::JoinHandle<Result<rocket::Rocket<rocket::Ignite>, rocket::Error>>,
}

impl Shop {
    async fn launch(figment: Figment, expected_store: &str) -> Shop {
        let port = free_port();
        let figment = figment
            .merge(("address", "127.0.0.1"))
            .merge(("port", port))
            .merge(("log_level", "critical"))
            .merge(("shutdown.ctrlc", false))
            .merge(("shutdown.signals", Vec::<String>::new()))
            .merge(("shutdown.grace", 1))
            .merge(("shutdown.mercy", 1));
        let rocket = shop::rocket(figment)
            .ignite()
            .await
            .unwrap_or_else(|e| panic!("the shop did not launch on {expected_store}: {e}"));
        let state = Sessions::state(&rocket).expect("the Sessions fairing is attached");
        assert_eq!(state.store_kind(), expected_store, "{state:?}");
        let secure = state.config().secure;
        let shutdown = rocket.shutdown();
        let task = tokio::spawn(rocket.launch());
        let wait = tokio::task::spawn_blocking(move || wait_for_port(port, "the shop"));
        wait.await.unwrap();
        Shop {
            target: Target {
                base: format!("http://127.0.0.1:{port}"),
                secure,
                store: expected_store.to_string(),
            },
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.notify();
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(e))) => panic!("the shop failed: {e}"),
            Ok(Err(e)) => panic!("the shop's task failed: {e}"),
            Err(_) => panic!("the shop did not shut down within 10 s"),
        }
    }
}

// ------------------------------------------------------- browser helpers

async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = client.current_url().await.map(|u| u.to_string());
            let source = client.source().await.unwrap_or_default();
            panic!("no `{css}` on {url:?} within {WAIT:?}: {e}\npage:\n{source}");
        }
    }
}

async fn text(client: &Client, css: &str) -> String {
    element(client, css).await.text().await.unwrap()
}

/// Clicks a submit button and waits for the page it leads to: the old
/// document is marked first, so an element of the old page is never taken
/// for the new one.
async fn click(client: &Client, css: &str) {
    let button = element(client, css).await;
    client
        .execute("window.__before_click = true; return null;", vec![])
        .await
        .unwrap();
    button.click().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let loaded = client
            .execute(
                "return window.__before_click !== true && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "clicking `{css}` led to no new page within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Fills in the login form on the current page and sends it.
async fn log_in(client: &Client, name: &str) {
    element(client, "form#login input[name=username]")
        .await
        .send_keys(name)
        .await
        .unwrap();
    click(client, "form#login button").await;
}

async fn absent(client: &Client, css: &str) {
    let found = client.find_all(Locator::Css(css)).await.unwrap();
    assert!(found.is_empty(), "`{css}` should not be on the page");
}

async fn path(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_string()
}

/// The session cookie as the browser stored it, if any.
async fn session_cookie(client: &Client) -> Option<Cookie<'static>> {
    let cookies = client.get_all_cookies().await.unwrap();
    cookies.into_iter().find(|c| c.name() == "session")
}

/// The session cookie, which must be there with the configured flags;
/// returns its value.
async fn checked_cookie(client: &Client, shop: &Target, step: &str) -> String {
    let cookie = session_cookie(client)
        .await
        .unwrap_or_else(|| panic!("{step}: the browser has no session cookie"));
    assert_eq!(cookie.http_only(), Some(true), "{step}: HttpOnly: {cookie}");
    assert_eq!(
        cookie.same_site(),
        Some(SameSite::Lax),
        "{step}: SameSite: {cookie}"
    );
    assert_eq!(
        cookie.secure(),
        Some(shop.secure),
        "{step}: Secure: {cookie}"
    );
    assert_eq!(cookie.path(), Some("/"), "{step}: Path: {cookie}");
    assert_eq!(
        cookie.value().len(),
        43,
        "{step}: a 256-bit token: {cookie}"
    );
    cookie.value().to_string()
}

/// Puts a session cookie back into the browser, as a stolen or kept copy.
async fn plant_cookie(client: &Client, shop: &Target, value: &str) {
    let mut cookie = Cookie::new("session", value.to_string());
    cookie.set_path("/");
    // chromedriver refuses a cookie without a domain ("invalid 'domain'").
    cookie.set_domain("127.0.0.1");
    cookie.set_http_only(true);
    cookie.set_secure(shop.secure);
    cookie.set_same_site(SameSite::Lax);
    client.delete_cookie("session").await.unwrap();
    client.add_cookie(cookie).await.unwrap();
    let stored: Vec<String> = client
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.name() == "session")
        .map(|c| c.value().to_string())
        .collect();
    assert_eq!(
        stored,
        [value],
        "the planted cookie is the only session cookie"
    );
}

// -------------------------------------------------------------- scenario

/// Log in, fill the cart, reload, second tab, check out, log out, replay
/// the old cookies; page content and cookie after every step.
async fn scenario(client: &Client, shop: &Target) {
    // Anonymous visits: a session with a counter, and the login form.
    client.goto(&shop.url("/")).await.unwrap();
    assert_eq!(text(client, "#visits").await, "1");
    element(client, "form#login input[name=username]").await;
    absent(client, "#user").await;
    let anonymous = checked_cookie(client, shop, "first visit").await;
    client.refresh().await.unwrap();
    assert_eq!(
        text(client, "#visits").await,
        "2",
        "the counter survives a reload"
    );
    assert_eq!(
        checked_cookie(client, shop, "second visit").await,
        anonymous,
        "same session, same cookie"
    );

    // The cart needs a login.
    client.goto(&shop.url("/cart")).await.unwrap();
    element(client, "#login-needed").await;
    assert_eq!(path(client).await, "/login");

    // Log in with a name that must be escaped.
    let name = "alice & <b>bob</b>";
    log_in(client, name).await;
    assert_eq!(
        text(client, "#user").await,
        name,
        "the name is shown as text"
    );
    absent(client, "#user b").await;
    absent(client, "form#login").await;
    assert_eq!(path(client).await, "/");
    assert_eq!(
        text(client, "#visits").await,
        "3",
        "the data outlives the new id"
    );
    let logged_in = checked_cookie(client, shop, "after login").await;
    assert_ne!(
        logged_in, anonymous,
        "login regenerates the session id, so the cookie changes"
    );

    // The activity page lists the sign-in, from the session's lifecycle
    // event; the metrics page counts it.
    assert_eq!(audit(client, shop).await, ["signed in"]);
    let metrics = metrics_text(client, shop).await;
    for line in [
        format!("sessions_created_total{{store=\"{}\"}}", shop.store),
        format!("sessions_regenerated_total{{store=\"{}\"}}", shop.store),
        format!(
            "session_store_operation_duration_seconds_count{{store=\"{}\"",
            shop.store
        ),
    ] {
        assert!(metrics.contains(&line), "/metrics has `{line}`:\n{metrics}");
    }
    assert!(!metrics.contains(&logged_in), "no token in the metrics");

    // Fill the cart: 2 × bread, 1 × apple, 1 × coffee.
    for product in ["bread", "apple", "bread", "coffee"] {
        client.goto(&shop.url("/products")).await.unwrap();
        click(client, &format!("#product-{product} form button")).await;
        element(client, "#cart").await;
        assert_eq!(path(client).await, "/cart");
    }
    assert_eq!(text(client, "#line-bread .quantity").await, "2");
    assert_eq!(text(client, "#line-apple .quantity").await, "1");
    assert_eq!(text(client, "#total").await, "€17.89");
    assert_eq!(
        checked_cookie(client, shop, "after add to cart").await,
        logged_in,
        "a change of data sends no new cookie"
    );

    // Remove a line.
    click(client, "#line-coffee form button").await;
    element(client, "#cart").await;
    absent(client, "#line-coffee").await;
    assert_eq!(text(client, "#total").await, "€8.90");

    // Reload: the cart is in the store, not in the page.
    client.refresh().await.unwrap();
    assert_eq!(text(client, "#line-bread .quantity").await, "2");
    assert_eq!(text(client, "#total").await, "€8.90");
    assert_eq!(text(client, "#user").await, name);
    checked_cookie(client, shop, "after reload").await;

    // A second tab sees the same session.
    let first = client.window().await.unwrap();
    let second = client.new_window(true).await.unwrap().handle;
    client.switch_to_window(second.clone()).await.unwrap();
    client.goto(&shop.url("/cart")).await.unwrap();
    assert_eq!(text(client, "#user").await, name);
    assert_eq!(text(client, "#line-bread .quantity").await, "2");
    assert_eq!(text(client, "#total").await, "€8.90");
    assert_eq!(checked_cookie(client, shop, "second tab").await, logged_in);

    // Check out in the second tab: the order lands in the deferred field.
    client.goto(&shop.url("/orders")).await.unwrap();
    element(client, "#no-orders").await;
    client.goto(&shop.url("/cart")).await.unwrap();
    click(client, "form#checkout button").await;
    assert_eq!(path(client).await, "/orders");
    let order = text(client, "#order-1").await;
    assert!(order.contains("2 × Sourdough bread"), "{order}");
    assert!(order.contains("1 × Apple"), "{order}");
    assert!(order.contains("€8.90"), "{order}");
    // The checkout's flash message, shown once: a reload no longer has it.
    assert_eq!(text(client, "#notice").await, "Order 1 placed. Thank you!");
    client.refresh().await.unwrap();
    element(client, "#order-1").await;
    absent(client, "#notice").await;

    // The first tab sees the emptied cart after a reload.
    client.switch_to_window(first).await.unwrap();
    client.refresh().await.unwrap();
    element(client, "#empty").await;
    absent(client, "#cart").await;

    // Log out from the first tab: the cookie is removed.
    click(client, "form#logout button").await;
    element(client, "#logged-out").await;
    absent(client, "#user").await;
    assert!(
        session_cookie(client).await.is_none(),
        "logout removes the cookie, got {:?}",
        session_cookie(client).await.map(|c| c.to_string())
    );

    // The second tab is logged out too.
    client.switch_to_window(second).await.unwrap();
    client.refresh().await.unwrap();
    element(client, "#login-needed").await;
    assert_eq!(path(client).await, "/login", "/orders needs a login again");
    absent(client, "#user").await;

    // A kept copy of the logged-in cookie opens nothing: the session is gone
    // from the store.
    plant_cookie(client, shop, &logged_in).await;
    client.goto(&shop.url("/cart")).await.unwrap();
    element(client, "#login-needed").await;
    assert_eq!(path(client).await, "/login", "the old cookie opens no cart");
    absent(client, "#user").await;
    client.goto(&shop.url("/")).await.unwrap();
    assert_eq!(
        text(client, "#visits").await,
        "1",
        "the old cookie starts a fresh session"
    );
    assert_ne!(
        checked_cookie(client, shop, "old cookie replayed").await,
        logged_in,
        "an unknown token is never adopted"
    );

    // Nor does the anonymous cookie from before the login (regenerate
    // retired it).
    plant_cookie(client, shop, &anonymous).await;
    client.goto(&shop.url("/cart")).await.unwrap();
    element(client, "#login-needed").await;
    client.goto(&shop.url("/")).await.unwrap();
    assert_eq!(text(client, "#visits").await, "1");

    // Control: a planted copy of a live cookie does open the cart, so the
    // refusals above are the server's doing, not a cookie the browser did
    // not send.
    log_in(client, "carol").await;
    assert_eq!(text(client, "#user").await, "carol");
    let live = checked_cookie(client, shop, "second login").await;
    client.delete_cookie("session").await.unwrap();
    client.goto(&shop.url("/cart")).await.unwrap();
    element(client, "#login-needed").await;
    plant_cookie(client, shop, &live).await;
    client.goto(&shop.url("/cart")).await.unwrap();
    assert_eq!(text(client, "#user").await, "carol");
    element(client, "#empty").await;

    // Carol's activity is hers alone: alice's sign-in and sign-out are not
    // on it.
    assert_eq!(audit(client, shop).await, ["signed in"]);

    // Carol signs in on a second device (this browser, fresh): the devices
    // page lists both, this one marked, and signs the other one out.
    client.delete_cookie("session").await.unwrap();
    client.goto(&shop.url("/login")).await.unwrap();
    log_in(client, "carol").await;
    let second = checked_cookie(client, shop, "second device").await;
    assert_ne!(second, live);
    client.goto(&shop.url("/account")).await.unwrap();
    let devices = |client: &Client| {
        let client = client.clone();
        async move {
            client
                .find_all(Locator::Css("#devices tr.device"))
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(devices(client).await, 2, "both devices listed");
    element(client, "#devices em.current").await;
    // Each with the device it began on (`device_info = true`): this
    // browser's user agent and its loopback network.
    let agent = text(client, "#devices tr.device td.agent").await;
    assert!(agent.contains("Chrome"), "the user agent: {agent}");
    assert_eq!(
        text(client, "#devices tr.device td.from").await,
        "127.0.0.0/24"
    );
    click(client, "#devices form.sign-out button").await;
    assert_eq!(path(client).await, "/account");
    assert_eq!(devices(client).await, 1, "only this device is left");
    element(client, "#devices em.current").await;
    assert_eq!(
        checked_cookie(client, shop, "after signing the other device out").await,
        second,
        "this device keeps its session"
    );
    // The signed-out device's cookie opens nothing any more.
    plant_cookie(client, shop, &live).await;
    client.goto(&shop.url("/cart")).await.unwrap();
    element(client, "#login-needed").await;
    plant_cookie(client, shop, &second).await;
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = audit(client, shop).await;
        if seen.iter().any(|e| e == "signed out from another device") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("signed out from another device"),
        "the activity page shows it: {seen:?}"
    );
}

/// The activity page's entries, newest first, once the event of the last
/// step has arrived (events are delivered after the response, on their
/// own thread: a bounded wait).
async fn audit(client: &Client, shop: &Target) -> Vec<String> {
    for _ in 0..50 {
        client.goto(&shop.url("/audit")).await.unwrap();
        if client
            .find_all(Locator::Css("#audit td.what"))
            .await
            .unwrap()
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        break;
    }
    let mut entries = Vec::new();
    for cell in client
        .find_all(Locator::Css("#audit td.what"))
        .await
        .unwrap()
    {
        entries.push(cell.text().await.unwrap());
    }
    entries
}

/// The text of `/metrics`.
async fn metrics_text(client: &Client, shop: &Target) -> String {
    client.goto(&shop.url("/metrics")).await.unwrap();
    text(client, "pre").await
}

/// Runs the scenario in one fresh browser against `shop`, then closes the
/// browser and stops the shop, whether or not the scenario passed.
async fn run(label: &str, figment: Figment, store: &str) {
    let started = Instant::now();
    let dir = TempDir::new(label);
    let driver = Chromedriver::start(&dir.0);
    let shop = Shop::launch(figment, store).await;
    let client = driver.connect().await;
    let outcome = {
        let client = client.clone();
        let target = shop.target.clone();
        tokio::spawn(async move { scenario(&client, &target).await }).await
    };
    let _ = client.close().await;
    shop.stop().await;
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    eprintln!(
        "{label}: scenario passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scenario_on_sqlite() {
    let dir = TempDir::new("sqlite-db");
    let url = format!("sqlite://{}", dir.0.join("sessions.db").display());
    let figment = shop::figment().select("debug").merge(("sessions.url", url));
    run("sqlite", figment, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scenario_on_mysql() {
    // The `mysql` profile of Rocket.toml, on tables of this run's own.
    let figment = shop::figment().select("mysql");
    let url: String = figment
        .extract_inner("sessions.url")
        .expect("Rocket.toml has [mysql.sessions] url");
    let mut conn = sqlx::MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the browser test needs the MySQL/MariaDB server of Rocket.toml's `mysql` profile \
             at {url}: {e}; start it (`.ci/run` does) and create the `test` database"
            )
        });
    let prefix = format!("e2e{}_", unique());
    let result = tokio::spawn(run(
        "mysql",
        figment.merge(("sessions.table_prefix", prefix.clone())),
        "mysql",
    ))
    .await;
    for table in [
        "session_previous",
        "session_index",
        "session_fields",
        "sessions",
    ] {
        sqlx::query(&format!("DROP TABLE IF EXISTS `{prefix}{table}`"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("drop {prefix}{table}: {e}"));
    }
    let _ = conn.close().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
