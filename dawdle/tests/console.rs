//! The console over real HTTP on loopback, against a real PostgreSQL: who
//! may use it, which POSTs it takes, read-only mode, no secret on any page,
//! pages of dead letters and signals, and its actions.

use std::net::SocketAddr;
use std::time::Duration;

use dawdle::console::{Console, ConsoleError};
use dawdle::queue::{PgQueue, Queue};
use dawdle_test::{demo, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A console served on a free loopback port until the handle is dropped.
struct Served {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve(console: Console) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let router = console.router();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Served { addr, _stop: stop }
}

/// An HTTP/1.1 response: status, headers (lowercase names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The CSRF cookie the page set.
    fn csrf(&self) -> String {
        let cookie = self.header("set-cookie").expect("a Set-Cookie");
        cookie
            .strip_prefix("dawdle_csrf=")
            .and_then(|rest| rest.split(';').next())
            .expect("the CSRF cookie")
            .to_owned()
    }
}

/// One request over a fresh connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let own_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    let host = if own_host {
        String::new()
    } else {
        format!("Host: {addr}\r\n")
    };
    let mut text = format!("{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        text.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    // Bodies are small pages: chunked encoding only wraps them.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], "").await
}

/// A POST with the CSRF cookie and field of a page just fetched.
async fn post(addr: SocketAddr, path: &str, csrf: &str, form: &str) -> Response {
    let cookie = format!("dawdle_csrf={csrf}");
    let body = format!("csrf={csrf}&{form}");
    request(addr, "POST", path, &[("Cookie", &cookie)], &body).await
}

async fn populated(dead_letters: usize) -> TestDb {
    let db = TestDb::new().await.unwrap();
    demo::populate(&db, dead_letters).await;
    db
}

const PAGES: [&str; 6] = [
    "/",
    "/queues",
    "/queues/default/dead-letters",
    "/signals",
    "/backfills",
    "/queues/nothing-here/dead-letters",
];

#[tokio::test]
async fn every_page_shows_what_the_database_holds() {
    let db = populated(3).await;
    let served = serve(Console::builder(db.config().clone()).build().unwrap()).await;
    for path in PAGES {
        let page = get(served.addr, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains("<nav>"), "{path}");
    }
    let pipeline = get(served.addr, "/").await.body;
    assert!(pipeline.contains("public.orders"), "per-table activity");
    // The watcher counted each event it read once: 40 inserts, 10 updates.
    let client = db.connect().await.unwrap();
    let counted: Vec<(String, i64)> = client
        .query(
            "SELECT action, sum(events)::int8 FROM dawdle.activity GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        counted,
        [("insert".to_owned(), 40), ("update".to_owned(), 10)]
    );
    assert!(pipeline.contains("<td class=\"num\">40</td>"), "{pipeline}");
    assert!(pipeline.contains("<svg"), "the chart");
    let dead = get(served.addr, "/queues/default/dead-letters").await.body;
    assert!(dead.contains("orders::ship") && dead.contains(demo::DEMO_ERROR));
    let signals = get(served.addr, "/signals").await.body;
    assert!(signals.contains("billing.invoice_due") && signals.contains("1017"));
    let backfills = get(served.addr, "/backfills").await.body;
    assert!(backfills.contains("public.orders") && backfills.contains("paused"));
}

#[tokio::test]
async fn a_dead_letter_page_shows_its_failure_and_decoded_events() {
    let db = populated(1).await;
    let queue = PgQueue::new(db.config().clone());
    let admin = queue.admin().unwrap();
    let letter = admin
        .dead_letters(dawdle::queue::DeadLetterPage::first(1))
        .await
        .unwrap()
        .remove(0);
    let served = serve(Console::builder(db.config().clone()).build().unwrap()).await;
    let page = get(
        served.addr,
        &format!("/queues/default/dead-letters/{}", letter.id),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Caused by:"), "the whole error chain");
    assert!(page.body.contains("5 attempts"));
    assert!(page.body.contains("<code>item</code>") && page.body.contains("<code>qty</code>"));
    assert_eq!(
        get(served.addr, "/queues/default/dead-letters/999999")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_token_is_needed_when_one_is_set_and_off_loopback() {
    let db = TestDb::new().await.unwrap();
    let console = |token: Option<&str>| {
        Console::builder(db.config().clone())
            .token(token.map(str::to_owned))
            .build()
            .unwrap()
    };
    let open = console(None);
    let outside: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    assert!(matches!(
        open.check_address(outside),
        Err(ConsoleError::Unprotected(_))
    ));
    assert!(open
        .check_address("127.0.0.1:8080".parse().unwrap())
        .is_ok());
    assert!(open.check_address("[::1]:8080".parse().unwrap()).is_ok());
    let error = open.clone().serve(outside, async {}).await.unwrap_err();
    assert!(
        error.to_string().contains("DAWDLE_CONSOLE_TOKEN"),
        "{error}"
    );
    assert!(matches!(
        Console::builder(db.config().clone())
            .token(Some(String::new()))
            .build(),
        Err(ConsoleError::EmptyToken)
    ));

    let guarded = console(Some("s3cret token"));
    assert!(guarded.check_address(outside).is_ok());
    let served = serve(guarded).await;
    assert_eq!(get(served.addr, "/queues").await.status, 401);
    let wrong = request(
        served.addr,
        "GET",
        "/queues",
        &[("Authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let bearer = request(
        served.addr,
        "GET",
        "/queues",
        &[("Authorization", "Bearer s3cret token")],
        "",
    )
    .await;
    assert_eq!(bearer.status, 200);
    // A link with the token: a cookie, and the token gone from the address.
    let link = get(served.addr, "/queues?token=s3cret%20token&x=1").await;
    assert_eq!(link.status, 303);
    assert_eq!(link.header("location"), Some("/queues?x=1"));
    let cookie = link
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let with_cookie = request(served.addr, "GET", "/queues", &[("Cookie", &cookie)], "").await;
    assert_eq!(with_cookie.status, 200);
}

#[tokio::test]
async fn posts_without_the_pages_csrf_token_are_refused() {
    let db = populated(2).await;
    let served = serve(Console::builder(db.config().clone()).build().unwrap()).await;
    let page = get(served.addr, "/queues/default/dead-letters").await;
    let csrf = page.csrf();
    let path = "/queues/default/discard";
    // No cookie, no field.
    let bare = request(served.addr, "POST", path, &[], "all=1").await;
    assert_eq!(bare.status, 403);
    // The field without the cookie (what a forged form carries).
    let forged = request(
        served.addr,
        "POST",
        path,
        &[],
        &format!("csrf={csrf}&all=1"),
    )
    .await;
    assert_eq!(forged.status, 403);
    // Cookie and field that differ.
    let cookie = format!("dawdle_csrf={csrf}");
    let differ = request(
        served.addr,
        "POST",
        path,
        &[("Cookie", &cookie)],
        "csrf=00000000000000000000000000000000&all=1",
    )
    .await;
    assert_eq!(differ.status, 403);
    // Both right, from another site.
    let cross = request(
        served.addr,
        "POST",
        path,
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        &format!("csrf={csrf}&all=1"),
    )
    .await;
    assert_eq!(cross.status, 403);
    let queue = PgQueue::new(db.config().clone());
    assert_eq!(
        queue.admin().unwrap().depth().await.unwrap().dead_letters,
        2,
        "nothing refused was done"
    );
    // Right: done, and back to the list with what happened.
    let done = post(served.addr, path, &csrf, "all=1").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.header("location").unwrap().to_owned();
    assert!(
        location.starts_with("/queues/default/dead-letters?done="),
        "{location}"
    );
    assert_eq!(
        queue.admin().unwrap().depth().await.unwrap().dead_letters,
        0
    );
    assert!(get(served.addr, &location)
        .await
        .body
        .contains("2 dead letters discarded"));
}

#[tokio::test]
async fn read_only_shows_no_form_and_refuses_every_post() {
    let db = populated(2).await;
    let console = Console::builder(db.config().clone())
        .read_only(true)
        .build()
        .unwrap();
    let served = serve(console).await;
    for path in PAGES {
        let page = get(served.addr, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<form"),
            "{path} has a form in read-only mode"
        );
    }
    let csrf = get(served.addr, "/").await.csrf();
    for (path, form) in [
        ("/queues/default/redrive", "all=1"),
        ("/queues/default/discard", "all=1"),
        ("/signals/cancel", "id=1"),
        ("/backfills/act", "name=public.orders&act=cancel"),
    ] {
        let refused = post(served.addr, path, &csrf, form).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(refused.body.contains("read-only"), "{path}");
    }
    let queue = PgQueue::new(db.config().clone());
    assert_eq!(
        queue.admin().unwrap().depth().await.unwrap().dead_letters,
        2
    );
}

#[tokio::test]
async fn no_page_shows_the_password_or_the_connection_string() {
    let db = populated(1).await;
    // Trust authentication lets the password through unused; the console
    // has it in its settings all the same.
    let password = "pa55-Wq9-zz-secret";
    let mut config = db.config().clone();
    config.password(password);
    let url = db.url();
    let served = serve(Console::builder(config).build().unwrap()).await;
    let letter = PgQueue::new(db.config().clone())
        .admin()
        .unwrap()
        .dead_letters(dawdle::queue::DeadLetterPage::first(1))
        .await
        .unwrap()
        .remove(0);
    let detail = format!("/queues/default/dead-letters/{}", letter.id);
    for path in PAGES
        .iter()
        .copied()
        .chain([detail.as_str(), "/signals?due=nonsense"])
    {
        let page = get(served.addr, path).await;
        for secret in [password, url.as_str(), "postgres://", "password"] {
            assert!(!page.body.contains(secret), "{path} shows {secret:?}");
        }
    }
}

#[tokio::test]
async fn dead_letters_and_signals_come_in_pages() {
    let db = populated(120).await;
    let client = db.connect().await.unwrap();
    client
        .batch_execute("SELECT dawdle.signal('tick', json_build_object('n', g), now() + g * interval '1 minute') FROM generate_series(1, 70) g")
        .await
        .unwrap();
    let served = serve(Console::builder(db.config().clone()).build().unwrap()).await;
    let mut seen = std::collections::BTreeSet::new();
    let mut path = "/queues/default/dead-letters".to_owned();
    let mut pages = 0;
    loop {
        let page = get(served.addr, &path).await;
        assert_eq!(page.status, 200);
        pages += 1;
        let rows = page.body.matches("name=\"id\" value=\"").count();
        for part in page.body.split("name=\"id\" value=\"").skip(1) {
            let id = part.split('"').next().unwrap().to_owned();
            assert!(seen.insert(id), "a dead letter on two pages");
        }
        match page
            .body
            .split("href=\"/queues/default/dead-letters?after=")
            .nth(1)
        {
            Some(rest) => {
                assert_eq!(rows, 50, "a full page before the next");
                path = format!(
                    "/queues/default/dead-letters?after={}",
                    rest.split('"').next().unwrap()
                );
            }
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 120));

    let first = get(served.addr, "/signals").await.body;
    assert_eq!(first.matches("<tr id=\"signal-").count(), 50);
    let next = first
        .split("href=\"/signals?")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = get(served.addr, &format!("/signals?{next}")).await.body;
    assert_eq!(
        second.matches("<tr id=\"signal-").count(),
        22,
        "70 ticks and 2 invoices"
    );
}

#[tokio::test]
async fn signals_and_backfills_act_from_their_pages() {
    let db = populated(0).await;
    let client = db.connect().await.unwrap();
    let served = serve(Console::builder(db.config().clone()).build().unwrap()).await;
    let page = get(served.addr, "/signals").await;
    let csrf = page.csrf();
    let id = page
        .body
        .split("<tr id=\"signal-")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let done = post(served.addr, "/signals/cancel", &csrf, &format!("id={id}")).await;
    assert_eq!(done.status, 303);
    let left: i64 = client
        .query_one("SELECT count(*) FROM dawdle.delayed", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
    let again = post(served.addr, "/signals/cancel", &csrf, &format!("id={id}")).await;
    assert!(
        again.header("location").unwrap().contains("failed="),
        "a second cancel says it was not waiting"
    );

    let resumed = post(
        served.addr,
        "/backfills/act",
        &csrf,
        "name=public.orders&act=resume",
    )
    .await;
    assert_eq!(resumed.status, 303);
    let paused: Option<chrono::DateTime<chrono::Utc>> = client
        .query_one("SELECT paused_at FROM dawdle.backfills", &[])
        .await
        .unwrap()
        .get(0);
    assert!(paused.is_none());
    post(
        served.addr,
        "/backfills/act",
        &csrf,
        "name=public.orders&act=cancel",
    )
    .await;
    assert!(get(served.addr, "/backfills")
        .await
        .body
        .contains("cancelled"));
}

/// Without a token, the console answers only to requests for loopback
/// names (a rebound name resolving to 127.0.0.1 is another site), or for the
/// hosts it is told to allow.
#[tokio::test]
async fn without_a_token_other_host_names_are_refused() {
    let db = TestDb::new().await.unwrap();
    let served = serve(Console::builder(db.config().clone()).build().unwrap()).await;
    for (host, status) in [
        ("rebind.evil:8080", 403),
        ("localhost:8080", 200),
        ("[::1]:8080", 200),
    ] {
        let page = request(served.addr, "GET", "/queues", &[("Host", host)], "").await;
        assert_eq!(page.status, status, "{host}");
    }
    let allowed = Console::builder(db.config().clone())
        .allow_host("Admin.Example.com")
        .build()
        .unwrap();
    let served = serve(allowed).await;
    let page = request(
        served.addr,
        "GET",
        "/queues",
        &[("Host", "admin.example.com")],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
}

/// Mounted under a prefix, links and the token's redirect keep it; odd ids
/// and never-due signals make pages, not errors.
#[tokio::test]
async fn a_console_mounted_under_a_prefix_and_odd_input() {
    let db = populated(1).await;
    let client = db.connect().await.unwrap();
    client
        .batch_execute("SELECT dawdle.signal('never', '{}', 'infinity')")
        .await
        .unwrap();
    let console = Console::builder(db.config().clone())
        .base_path("/ops/dawdle/")
        .token(Some("t0ken".into()))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().nest("/ops/dawdle", console.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let link = get(addr, "/ops/dawdle/queues?token=t0ken").await;
    assert_eq!(link.header("location"), Some("/ops/dawdle/queues"));
    let auth = [("Authorization", "Bearer t0ken")];
    let page = request(addr, "GET", "/ops/dawdle", &auth, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("href=\"/ops/dawdle/queues\""),
        "links keep the prefix"
    );
    assert!(
        page.body.contains("href=\"/ops/dawdle\" class=\"here\""),
        "the pipeline's link"
    );
    let signals = request(addr, "GET", "/ops/dawdle/signals", &auth, "").await;
    assert_eq!(signals.status, 200);
    assert!(signals.body.contains("never"));
    let odd = request(
        addr,
        "GET",
        "/ops/dawdle/queues/default/dead-letters/not-a-number",
        &auth,
        "",
    )
    .await;
    assert_eq!(odd.status, 404);
}
