//! `dawdle console` in a real browser: Debian's chromium, driven through
//! chromedriver (WebDriver), against a real PostgreSQL. A dead letter is
//! redriven with a click and then handled; a delayed signal is cancelled
//! from its page; every page is saved as a screenshot under
//! `target/console-screenshots/`.
//!
//! Without chromium and chromedriver on PATH (Debian: `apt-get install
//! chromium chromium-driver`), the test says so and skips, unless
//! `DAWDLE_REQUIRE_BROWSER` is set (CI sets it, after installing them).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::{dawdle, eventually, Process};
use dawdle::queue::{DeadLetterPage, PgQueue, Queue};
use dawdle_test::{demo, TestDb};
use fantoccini::{Client, ClientBuilder, Locator};

/// The demo's rows, as a listener decodes them.
#[derive(Debug, Clone, dawdle::Watched)]
#[dawdle(table = "orders")]
struct Order {
    id: i32,
    item: String,
    qty: i32,
}

/// Ids of the orders handled.
static HANDLED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

#[dawdle::handler]
async fn ship(event: dawdle::Change<Order>) {
    let order = match &event {
        dawdle::Change::Insert(e) => &e.new,
        dawdle::Change::Update(e) => &e.new,
        dawdle::Change::Delete(e) => &e.old,
        _ => return,
    };
    assert!(!order.item.is_empty() && order.qty > 0);
    HANDLED.lock().unwrap().insert(order.id);
}

/// An executable on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn text(browser: &Client) -> String {
    browser.source().await.unwrap()
}

/// The page, once it shows `needle` (after a click's navigation).
async fn text_with(browser: &Client, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let page = text(browser).await;
        if page.contains(needle) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never showed {needle:?}:\n{page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redrive_and_cancel_with_a_click() {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
    else {
        assert!(
            std::env::var_os("DAWDLE_REQUIRE_BROWSER").is_none(),
            "DAWDLE_REQUIRE_BROWSER is set, but chromium or chromedriver is not on PATH"
        );
        eprintln!(
            "SKIPPED: the console's browser test needs chromium and chromedriver on PATH \
             (Debian: apt-get install chromium chromium-driver)"
        );
        return;
    };
    let db = TestDb::new().await.unwrap();
    demo::populate(&db, 3).await;

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _console = Process(
        dawdle(None)
            .args(["console", "--addr", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", db.url())
            .spawn()
            .unwrap(),
    );
    let driver_port = free_port();
    let _driver = Process(
        Command::new(&chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for port in [port, driver_port] {
        eventually("the console and chromedriver to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1360,1000"],
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a chromium session through chromedriver");

    // A watcher and a listener at work, as in production: the pipeline
    // shows its leader, and the listener handles what waits (and, later,
    // the redriven dead letter).
    let runtime = dawdle::Runtime::builder()
        .database(db.config().clone())
        .watch()
        .listen()
        .build()
        .unwrap()
        .start();
    let leading = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !runtime.watcher_stats().unwrap().is_leading() {
        assert!(
            tokio::time::Instant::now() < leading,
            "the watcher never led"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Every page, as an operator sees it.
    for (path, name) in [
        ("/", "pipeline"),
        ("/queues", "queues"),
        ("/signals", "signals"),
        ("/backfills", "backfills"),
    ] {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        shoot(&browser, name).await;
    }

    // Redrive one dead letter with a click on its page.
    let queue = PgQueue::new(db.config().clone());
    let admin = queue.admin().unwrap();
    let letters = admin.dead_letters(DeadLetterPage::first(10)).await.unwrap();
    assert_eq!(letters.len(), 3);
    browser
        .goto(&format!("{base}/queues/default/dead-letters"))
        .await
        .unwrap();
    shoot(&browser, "dead-letters").await;
    let first = &letters[0];
    browser
        .find(Locator::LinkText(&first.id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(&browser, demo::DEMO_ERROR).await;
    shoot(&browser, "dead-letter").await;
    browser
        .find(Locator::Css("form[action$='/redrive'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let after = text_with(&browser, "1 dead letter redriven").await;
    assert!(
        !after.contains(&format!(">{}</a>", first.id)),
        "the redriven letter left the list"
    );
    shoot(&browser, "dead-letters-after-redrive").await;

    // The listener handles it, and it stays gone.
    let redriven: BTreeSet<i32> = dawdle::wire::Envelope::parse(&first.body)
        .unwrap()
        .events
        .iter()
        .filter_map(|e| e.new.as_ref()?.get("id")?.as_i64())
        .map(|id| id as i32)
        .collect();
    assert!(!redriven.is_empty());
    eventually("the redriven events to be handled", || {
        let redriven = redriven.clone();
        async move { redriven.is_subset(&HANDLED.lock().unwrap()) }
    })
    .await;
    eventually("the queue to be empty", || async {
        let depth = admin.depth().await.unwrap();
        depth.waiting + depth.in_flight == 0
    })
    .await;
    runtime.shutdown().await.unwrap();
    browser
        .goto(&format!("{base}/queues/default/dead-letters"))
        .await
        .unwrap();
    let list = text(&browser).await;
    assert!(!list.contains(&format!(">{}</a>", first.id)));
    assert_eq!(admin.depth().await.unwrap().dead_letters, 2);

    // Cancel a delayed signal from its page.
    browser.goto(&format!("{base}/signals")).await.unwrap();
    browser
        .find(Locator::Css("form[action$='/signals/cancel'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(&browser, "cancelled").await;
    let client = db.connect().await.unwrap();
    let left: i64 = client
        .query_one("SELECT count(*) FROM dawdle.delayed", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
    shoot(&browser, "signals-after-cancel").await;
    browser.close().await.unwrap();
}
