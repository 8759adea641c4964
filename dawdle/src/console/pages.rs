//! The console's pages and actions.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::guard;
use super::html::{self, card, esc, url, Nav};
use super::Shared;
use crate::queue::{
    DeadLetter, DeadLetterPage, DeadLetterSelection, PgQueue, Queue, QueueAdmin, QueueDepth,
};
use crate::sql::catalog::console as sql;
use crate::wire::{Envelope, WireEvent};

/// Rows per page of a list.
const PAGE: usize = 50;

/// Why a page could not be made: shown as a page of its own.
pub(crate) struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>dawdle console</title>\
             <body style=\"font-family:system-ui;padding:24px\"><h1>{}</h1><p>{}</p>\
             <p><a href=\"javascript:history.back()\">Back</a></p></body>",
            self.0,
            esc(&self.1)
        );
        (self.0, Html(body)).into_response()
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

/// A database error as the server said it (never the connection string).
fn pg(error: tokio_postgres::Error) -> Failure {
    Failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        crate::database::DisplayPgError::new(&error).to_string(),
    )
}

type Client = deadpool_postgres::Object;

async fn client(shared: &Shared) -> Result<Client, Failure> {
    shared.pool.get().await.map_err(Failure::from)
}

/// A page, with the CSRF cookie set on a first visit.
fn respond(
    shared: &Shared,
    headers: &HeaderMap,
    database: &str,
    nav: Nav,
    title: &str,
    body: impl FnOnce(&Form) -> String,
) -> Response {
    let (token, fresh) = guard::csrf_token(headers);
    let form = Form {
        token,
        read_only: shared.read_only,
        base: shared.base.clone(),
    };
    let page = html::page(&shared.base, database, nav, title, &body(&form));
    let mut response = Html(page).into_response();
    if fresh {
        if let Ok(value) = HeaderValue::from_str(&guard::csrf_cookie(&form.token)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What forms need: the CSRF token, and whether there are forms at all.
struct Form {
    token: String,
    read_only: bool,
    base: String,
}

impl Form {
    /// A form posting to `action` with `fields` and one button; nothing in
    /// read-only mode.
    fn button(&self, action: &str, fields: &[(&str, &str)], label: &str, class: &str) -> String {
        if self.read_only {
            return String::new();
        }
        let mut form = format!(
            "<form class=\"inline\" method=\"post\" action=\"{}{}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            self.base,
            esc(action),
            esc(&self.token)
        );
        for (name, value) in fields {
            let _ = write!(
                form,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(name),
                esc(value)
            );
        }
        let _ = write!(
            form,
            "<button class=\"{class}\" type=\"submit\">{}</button></form>",
            esc(label)
        );
        form
    }
}

async fn database_name(client: &Client) -> Result<String, Failure> {
    Ok(client
        .query_one(sql::DATABASE, &[])
        .await
        .map_err(pg)?
        .get(0))
}

/// A message after an action, from `?done=` or `?failed=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Flash {
    done: Option<String>,
    failed: Option<String>,
    after: Option<String>,
}

impl Flash {
    fn html(&self) -> String {
        match (&self.done, &self.failed) {
            (_, Some(failed)) => format!("<div class=\"flash bad\">{}</div>", esc(failed)),
            (Some(done), None) => format!("<div class=\"flash\">{}</div>", esc(done)),
            (None, None) => String::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Pipeline

pub(crate) async fn pipeline(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Response, Failure> {
    // Counting a large backlog takes a while: the rest is read meanwhile,
    // on other connections.
    let (backlog, watchers, activity, depths) = tokio::join!(
        async {
            crate::status::backlog(&*client(&shared).await?)
                .await
                .map_err(Failure::from)
        },
        async {
            let client = client(&shared).await?;
            let database = database_name(&client).await?;
            let leader = crate::status::leader(&client).await?;
            let slot = crate::status::wal_slot(&client).await?;
            let leader_pid = leader.as_ref().map(|l| l.pid);
            let standbys = client
                .query(sql::STANDBYS, &[&leader_pid])
                .await
                .map_err(pg)?;
            Ok::<_, Failure>((database, leader, slot, standbys))
        },
        async { activity(&*client(&shared).await?).await.map_err(pg) },
        depths(&shared),
    );
    let (backlog, (database, leader, slot, standbys), depths) = (backlog?, watchers?, depths?);
    // Without dawdle.activity (an older migration), no chart: not an error.
    let (per_minute, per_table) = activity.unwrap_or_default();
    Ok(respond(
        &shared,
        &headers,
        &database,
        Nav::Pipeline,
        "Pipeline",
        |_| {
            let mut b = flash.html();
            b.push_str("<h1>Pipeline</h1><div class=\"cards\">");
            let age = backlog.oldest_age.map_or("none waiting".to_owned(), |a| {
                format!("oldest {}", html::duration(a))
            });
            let class = if backlog
                .oldest_age
                .is_some_and(|a| a > Duration::from_secs(60))
            {
                "bad"
            } else {
                ""
            };
            b.push_str(&card(
                "Waiting events",
                &html::count(backlog.events),
                class,
                &age,
            ));
            // Captured from the WAL: what waits is in the replication slot.
            if let Some(slot) = &slot {
                let lost = slot.wal_status.as_deref() == Some("lost");
                let (class, note) = match (lost, slot.active) {
                    (true, _) => ("bad", "LOST: its WAL was removed; see README".to_owned()),
                    (false, false) => (
                        "bad",
                        format!("not read · retains {}", html::bytes(slot.retained_bytes)),
                    ),
                    (false, true) => (
                        "",
                        format!(
                            "read by the leader · retains {}",
                            html::bytes(slot.retained_bytes)
                        ),
                    ),
                };
                b.push_str(&card(
                    &format!("WAL slot {}", slot.name),
                    &html::bytes(slot.lag_bytes),
                    class,
                    &format!("not yet confirmed · {note}"),
                ));
            }
            let total: i64 = per_minute.iter().map(|(_, n)| n).sum();
            b.push_str(&card(
                "Events, last hour",
                &html::count(total.max(0) as u64),
                "",
                &per_second(total as f64 / 3600.0),
            ));
            match &leader {
                Some(l) => b.push_str(&card(
                    "Leading watcher",
                    &format!("pid {}", l.pid),
                    "good",
                    &format!(
                        "{} · connected {}",
                        l.client_addr.as_deref().unwrap_or("local socket"),
                        html::duration(l.connected_for)
                    ),
                )),
                None => b.push_str(&card(
                    "Leading watcher",
                    "none",
                    "bad",
                    "no watcher holds the leader's lock",
                )),
            }
            b.push_str(&card(
                "Standbys",
                &standbys.len().to_string(),
                "",
                "watchers waiting to take over",
            ));
            let dead: u64 = depths
                .iter()
                .filter_map(|(_, d)| d.as_ref().ok())
                .map(|d| d.dead_letters)
                .sum();
            b.push_str(&card(
                "Dead letters",
                &html::count(dead),
                if dead > 0 { "bad" } else { "good" },
                "across the queues below",
            ));
            b.push_str("</div>");

            b.push_str("<h2>Events per second, last hour</h2>");
            b.push_str(&html::bar_chart(
                &per_minute
                    .iter()
                    .map(|(m, n)| (m.format("%H:%M").to_string(), *n as f64 / 60.0))
                    .collect::<Vec<_>>(),
                "events/s",
            ));
            b.push_str("<p class=\"muted\">Each bar is a minute: the events the leading watcher read, per second. Minutes with none show no bar.</p>");

            b.push_str("<h2>Tables, last hour</h2>");
            if per_table.is_empty() {
                b.push_str("<p class=\"muted\">No event in the last hour.</p>");
            } else {
                b.push_str(
                    "<table><tr><th>table</th><th>action</th><th class=\"num\">events</th></tr>",
                );
                for (schema, table, action, n) in &per_table {
                    let _ = write!(b, "<tr><td><code>{}.{}</code></td><td><span class=\"pill {}\">{}</span></td><td class=\"num\">{}</td></tr>", esc(schema), esc(table), esc(action), esc(action), html::count(*n as u64));
                }
                b.push_str("</table>");
            }

            b.push_str("<h2>Watchers</h2><table><tr><th>role</th><th>pid</th><th>client</th><th>connected since</th></tr>");
            if let Some(l) = &leader {
                let _ = write!(b, "<tr><td><span class=\"pill insert\">leader</span></td><td>{}</td><td>{}</td><td>{}</td></tr>", l.pid, esc(l.client_addr.as_deref().unwrap_or("local socket")), html::time(l.backend_start));
            }
            for row in &standbys {
                let pid: i32 = row.get(0);
                let addr: Option<String> = row.get(1);
                let since: DateTime<Utc> = row.get(2);
                let _ = write!(b, "<tr><td><span class=\"pill\">standby</span></td><td>{pid}</td><td>{}</td><td>{}</td></tr>", esc(addr.as_deref().unwrap_or("local socket")), html::time(since));
            }
            if leader.is_none() && standbys.is_empty() {
                b.push_str(
                    "<tr><td colspan=\"4\" class=\"muted\">No watcher is connected.</td></tr>",
                );
            }
            b.push_str("</table>");
            b.push_str(&queue_table(&shared.base, &depths));
            b
        },
    ))
}

/// A rate for people: `12.5 per second`, `0.014 per second`.
fn per_second(rate: f64) -> String {
    match rate {
        r if r >= 10.0 => format!("{r:.0} per second"),
        r if r >= 0.1 => format!("{r:.1} per second"),
        r => format!("{r:.3} per second"),
    }
}

/// Events per minute over the last hour (every minute, zeros included),
/// and per table and action.
async fn activity(
    client: &tokio_postgres::Client,
) -> Result<
    (
        Vec<(DateTime<Utc>, i64)>,
        Vec<(String, String, String, i64)>,
    ),
    tokio_postgres::Error,
> {
    let now: DateTime<Utc> = client.query_one(sql::NOW_MINUTE, &[]).await?.get(0);
    let rows = client.query(sql::PER_MINUTE, &[]).await?;
    let counted: std::collections::HashMap<DateTime<Utc>, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let minutes = (0..60)
        .rev()
        .map(|ago| now - chrono::TimeDelta::minutes(ago))
        .map(|m| (m, counted.get(&m).copied().unwrap_or(0)))
        .collect();
    let per_table = client
        .query(sql::PER_TABLE, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    Ok((minutes, per_table))
}

// ---------------------------------------------------------------------------
// Queues

/// The database's PgQueues (those with messages or dead letters, and
/// `default`), then the queues given to the console.
async fn all_queues(
    shared: &Shared,
    client: &tokio_postgres::Client,
) -> Result<Vec<Arc<dyn Queue>>, Failure> {
    let mut names: Vec<String> = match client.query(sql::PG_QUEUES, &[]).await {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        // No PgQueue tables: the up migration was not applied here.
        Err(_) => Vec::new(),
    };
    if !names.iter().any(|n| n == "default") {
        names.insert(0, "default".to_owned());
    }
    let mut queues: Vec<Arc<dyn Queue>> = names
        .into_iter()
        .map(|name| {
            Arc::new(PgQueue::from_pool(shared.pool.clone()).name(name).build()) as Arc<dyn Queue>
        })
        .collect();
    queues.extend(shared.queues.iter().cloned());
    Ok(queues)
}

/// The queue named `name` (its admin name).
async fn find_queue(
    shared: &Shared,
    client: &tokio_postgres::Client,
    name: &str,
) -> Result<Arc<dyn Queue>, Failure> {
    for queue in all_queues(shared, client).await? {
        if queue.admin().is_some_and(|a| a.name() == name) {
            return Ok(queue);
        }
    }
    // A PgQueue with nothing in it yet is a PgQueue all the same.
    if shared.queues.is_empty() || !name.contains("://") {
        return Ok(Arc::new(
            PgQueue::from_pool(shared.pool.clone()).name(name).build(),
        ));
    }
    Err(Failure(StatusCode::NOT_FOUND, format!("no queue {name:?}")))
}

fn admin(queue: &Arc<dyn Queue>) -> Result<&dyn QueueAdmin, Failure> {
    queue.admin().ok_or_else(|| {
        Failure(
            StatusCode::NOT_FOUND,
            "this queue cannot be administered".to_owned(),
        )
    })
}

fn queue_table(
    base: &str,
    depths: &[(String, Result<QueueDepth, crate::queue::QueueError>)],
) -> String {
    let mut b = String::from(
        "<h2>Queues</h2><table><tr><th>queue</th><th class=\"num\">waiting</th><th class=\"num\">in flight</th>\
         <th class=\"num\">delayed</th><th class=\"num\">oldest</th><th class=\"num\">dead letters</th></tr>",
    );
    for (name, depth) in depths {
        let link = format!("{base}/queues/{}/dead-letters", url(name));
        match depth {
            Ok(d) => {
                let oldest = d.oldest_age.map_or("unknown".to_owned(), |a| {
                    if a.is_zero() {
                        "–".to_owned()
                    } else {
                        html::duration(a)
                    }
                });
                let dead = if d.dead_letters > 0 {
                    format!(
                        "<a href=\"{link}\"><b class=\"error\">{}</b></a>",
                        html::count(d.dead_letters)
                    )
                } else {
                    format!("<a href=\"{link}\">0</a>")
                };
                let _ = write!(b, "<tr><td><a href=\"{link}\"><code>{}</code></a></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{dead}</td></tr>",
                    esc(name), html::count(d.waiting), html::count(d.in_flight), html::count(d.delayed), esc(&oldest));
            }
            Err(error) => {
                let _ = write!(
                    b,
                    "<tr><td><code>{}</code></td><td colspan=\"5\" class=\"error\">{}</td></tr>",
                    esc(name),
                    esc(&error.to_string())
                );
            }
        }
    }
    b.push_str("</table>");
    b
}

/// Every queue's name and depth, asked of all at once.
async fn depths(
    shared: &Shared,
) -> Result<Vec<(String, Result<QueueDepth, crate::queue::QueueError>)>, Failure> {
    let queues = all_queues(shared, &*client(shared).await?).await?;
    let mut asked = Vec::with_capacity(queues.len());
    for queue in &queues {
        if let Some(admin) = queue.admin() {
            let admin = admin.to_shared();
            asked.push((
                admin.name().to_owned(),
                tokio::spawn(async move { admin.depth().await }),
            ));
        }
    }
    let mut depths = Vec::with_capacity(asked.len());
    for (name, task) in asked {
        depths.push((name, task.await.map_err(Failure::from)?));
    }
    Ok(depths)
}

pub(crate) async fn queues(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Response, Failure> {
    let (database, depths) = tokio::join!(
        async { database_name(&client(&shared).await?).await },
        depths(&shared)
    );
    let (database, depths) = (database?, depths?);
    Ok(respond(
        &shared,
        &headers,
        &database,
        Nav::Queues,
        "Queues",
        |_| {
            let mut b = flash.html();
            b.push_str("<h1>Queues</h1>");
            b.push_str(&queue_table(&shared.base, &depths));
            b.push_str("<p class=\"muted\">The database's PgQueues that hold messages or dead letters (and <code>default</code>), and the queues the console was given.</p>");
            b
        },
    ))
}

pub(crate) async fn dead_letters(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, Failure> {
    let client = client(&shared).await?;
    let database = database_name(&client).await?;
    let queue = find_queue(&shared, &client, &name).await?;
    let admin = admin(&queue)?;
    let page = match &flash.after {
        Some(after) => DeadLetterPage::first(PAGE).after(after),
        None => DeadLetterPage::first(PAGE),
    };
    let (letters, depth) = tokio::join!(admin.dead_letters(page), admin.depth());
    let (letters, depth) = (letters?, depth?);
    let path = format!("/queues/{}", url(&name));
    Ok(respond(
        &shared,
        &headers,
        &database,
        Nav::Queues,
        &format!("Dead letters of {name}"),
        |form| {
            let mut b = flash.html();
            let _ = write!(b, "<h1>Dead letters of <code>{}</code></h1><p class=\"muted\">{} dead letters in all.</p>", esc(&name), html::count(depth.dead_letters));
            if !form.read_only && depth.dead_letters > 0 {
                b.push_str("<div class=\"actions\">");
                b.push_str(&form.button(
                    &format!("{path}/redrive"),
                    &[("all", "1")],
                    "Redrive all",
                    "primary",
                ));
                b.push_str(&form.button(
                    &format!("{path}/discard"),
                    &[("all", "1")],
                    "Discard all",
                    "danger",
                ));
                b.push_str("</div>");
            }
            if letters.is_empty() {
                b.push_str("<p class=\"muted\">No dead letter here.</p>");
                return b;
            }
            let selectable = !form.read_only;
            if selectable {
                let _ = write!(b, "<form method=\"post\" id=\"selection\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&form.token));
            }
            b.push_str("<table><tr>");
            if selectable {
                b.push_str("<th></th>");
            }
            b.push_str("<th>id</th><th>dead-lettered</th><th>reason</th><th>last failure</th><th class=\"num\">attempts</th><th>events</th></tr>");
            for letter in &letters {
                let link = format!("{}{path}/dead-letters/{}", form.base, url(&letter.id));
                b.push_str("<tr>");
                if selectable {
                    let _ = write!(b, "<td><input type=\"checkbox\" name=\"id\" value=\"{}\" aria-label=\"select {}\"></td>", esc(&letter.id), esc(&letter.id));
                }
                let when = letter.dead_lettered_at.map(html::time).unwrap_or_default();
                let failure = letter.failure.as_ref().map_or(String::new(), |f| {
                    format!(
                        "<b>{}</b>: {}",
                        esc(f.handler.as_deref().unwrap_or("dawdle")),
                        esc(&first_line(&f.error))
                    )
                });
                let attempts = letter
                    .failure
                    .as_ref()
                    .map_or(letter.receive_count, |f| f.attempts);
                let _ = write!(b, "<td><a href=\"{link}\">{}</a></td><td>{}</td><td>{}</td><td>{failure}</td><td class=\"num\">{attempts}</td><td>{}</td></tr>",
                esc(&letter.id), esc(&when), esc(&first_line(&letter.reason)), summary(letter));
            }
            b.push_str("</table>");
            if selectable {
                let _ = write!(b, "<div class=\"actions\"><button class=\"primary\" type=\"submit\" formaction=\"{0}{path}/redrive\">Redrive selected</button><button class=\"danger\" type=\"submit\" formaction=\"{0}{path}/discard\">Discard selected</button></div></form>", form.base);
            }
            if letters.len() == PAGE {
                if let Some(last) = letters.last() {
                    let _ = write!(b, "<div class=\"pager\"><a href=\"{}{path}/dead-letters?after={}\">Next {PAGE} →</a></div>", form.base, url(&last.id));
                }
            }
            b
        },
    ))
}

/// The first line of `text`, at most 200 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

/// What a dead letter's message carries: its events' tables and actions.
fn summary(letter: &DeadLetter) -> String {
    match Envelope::parse(&letter.body) {
        Ok(envelope) => {
            let mut kinds: Vec<String> = envelope
                .events
                .iter()
                .map(|e| match &e.signal {
                    Some(signal) => format!("signal {signal}"),
                    None => format!("{}.{} {}", e.schema, e.table, e.action.as_str()),
                })
                .collect();
            kinds.dedup();
            format!("{} · {}", envelope.events.len(), esc(&kinds.join(", ")))
        }
        Err(error) => format!("<span class=\"error\">{}</span>", esc(&error.to_string())),
    }
}

pub(crate) async fn dead_letter(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    Query(flash): Query<Flash>,
) -> Result<Response, Failure> {
    let client = client(&shared).await?;
    let database = database_name(&client).await?;
    let queue = find_queue(&shared, &client, &name).await?;
    let found = admin(&queue)?.find_dead_letter(&id).await;
    let found = found.map_err(|error| match error {
        crate::queue::QueueError::InvalidId(_) => Failure(StatusCode::NOT_FOUND, error.to_string()),
        error => Failure::from(error),
    })?;
    let letter = found.ok_or_else(|| {
        Failure(
            StatusCode::NOT_FOUND,
            format!("queue {name:?} has no dead letter {id:?}"),
        )
    })?;
    let path = format!("/queues/{}", url(&name));
    Ok(respond(
        &shared,
        &headers,
        &database,
        Nav::Queues,
        &format!("Dead letter {id}"),
        |form| {
            let mut b = flash.html();
            let _ = write!(
                b,
                "<h1>Dead letter {} of <code>{}</code></h1>",
                esc(&id),
                esc(&name)
            );
            b.push_str("<div class=\"actions\">");
            b.push_str(&form.button(
                &format!("{path}/redrive"),
                &[("id", &id)],
                "Redrive",
                "primary",
            ));
            b.push_str(&form.button(
                &format!("{path}/discard"),
                &[("id", &id)],
                "Discard",
                "danger",
            ));
            b.push_str("</div><table>");
            let _ = write!(
                b,
                "<tr><th>reason</th><td>{}</td></tr>",
                esc(&letter.reason)
            );
            let when = letter
                .dead_lettered_at
                .map(html::time)
                .unwrap_or_else(|| "unknown".to_owned());
            let _ = write!(
                b,
                "<tr><th>dead-lettered</th><td>{}</td></tr><tr><th>receives</th><td>{}</td></tr>",
                esc(&when),
                letter.receive_count
            );
            if let Some(group) = &letter.group_id {
                let _ = write!(
                    b,
                    "<tr><th>group</th><td><code>{}</code></td></tr>",
                    esc(group)
                );
            }
            if let Some(f) = &letter.failure {
                let _ = write!(b, "<tr><th>last failure</th><td><b>{}</b>{}<pre>{}</pre>{} attempts, the first at {}, the last at {}</td></tr>",
                esc(f.handler.as_deref().unwrap_or("dawdle")),
                if f.panicked { " <span class=\"pill delete\">panicked</span>" } else { "" },
                esc(&f.error), f.attempts, html::time(f.first_at), html::time(f.last_at));
            }
            b.push_str("</table>");
            match Envelope::parse(&letter.body) {
                Ok(envelope) => {
                    let _ = write!(b, "<h2>{} events</h2>", envelope.events.len());
                    for event in &envelope.events {
                        b.push_str(&event_html(event));
                    }
                }
                Err(error) => {
                    let _ = write!(
                        b,
                        "<h2>Body</h2><p class=\"error\">{}</p><pre>{}</pre>",
                        esc(&error.to_string()),
                        esc(&letter.body)
                    );
                }
            }
            b
        },
    ))
}

/// One event of a message: what happened to which row, and its columns.
fn event_html(e: &WireEvent) -> String {
    let mut b = String::new();
    let what = match &e.signal {
        Some(signal) => format!(
            "<span class=\"pill signal\">signal</span> <code>{}</code>",
            esc(signal)
        ),
        None => format!(
            "<span class=\"pill {0}\">{0}</span> <code>{1}.{2}</code> key <code>{3}</code>",
            esc(e.action.as_str()),
            esc(&e.schema),
            esc(&e.table),
            esc(e.key.get())
        ),
    };
    let _ = write!(
        b,
        "<h2 style=\"text-transform:none\">event {} · {what} · captured {}</h2>",
        e.id,
        esc(&e.captured_at.to_rfc3339())
    );
    if e.by_ref {
        b.push_str("<p class=\"muted\">Sent by reference: its rows wait in <code>dawdle.payloads</code> of its source database.</p>");
    }
    if let Some(payload) = &e.payload {
        let _ = write!(
            b,
            "<pre>{}</pre>",
            esc(&serde_json::to_string_pretty(payload).unwrap_or_default())
        );
    }
    let old = e.old.as_ref().and_then(|v| v.as_object());
    let new = e.new.as_ref().and_then(|v| v.as_object());
    if old.is_some() || new.is_some() {
        let mut columns: Vec<&String> = old.into_iter().chain(new).flat_map(|o| o.keys()).collect();
        columns.sort();
        columns.dedup();
        b.push_str("<table><tr><th>column</th><th>old</th><th>new</th></tr>");
        let show = |o: Option<&serde_json::Map<String, serde_json::Value>>, c: &str| {
            o.and_then(|o| o.get(c)).map_or(String::new(), |v| {
                format!("<code>{}</code>", esc(&v.to_string()))
            })
        };
        for c in columns {
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(c),
                show(old, c),
                show(new, c)
            );
        }
        b.push_str("</table>");
    }
    b
}

/// A form's fields (repeated names kept).
fn fields(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Checks a POST (CSRF, read-only) and returns its fields.
fn checked_post(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, Failure> {
    if shared.read_only {
        return Err(Failure(
            StatusCode::FORBIDDEN,
            "the console is read-only".to_owned(),
        ));
    }
    let fields = fields(body);
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Some(reason) = guard::refuse_post(headers, token) {
        return Err(Failure(StatusCode::FORBIDDEN, reason.to_owned()));
    }
    Ok(fields)
}

/// Back to `path` with a message.
fn back(shared: &Shared, path: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(done) => ("done", done),
        Err(failed) => ("failed", failed),
    };
    Redirect::to(&format!("{}{path}?{key}={}", shared.base, url(&text))).into_response()
}

async fn on_dead_letters(
    shared: Shared,
    headers: HeaderMap,
    name: String,
    body: Bytes,
    redrive: bool,
) -> Result<Response, Failure> {
    let fields = checked_post(&shared, &headers, &body)?;
    let client = client(&shared).await?;
    let queue = find_queue(&shared, &client, &name).await?;
    let admin = admin(&queue)?;
    let ids: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .collect();
    let all = fields.iter().any(|(k, v)| k == "all" && v == "1");
    if ids.is_empty() && !all {
        return Ok(back(
            &shared,
            &format!("/queues/{}/dead-letters", url(&name)),
            Err("nothing was selected".to_owned()),
        ));
    }
    let which = if all {
        DeadLetterSelection::all()
    } else {
        DeadLetterSelection::ids(&ids)
    };
    let verb = if redrive { "redriven" } else { "discarded" };
    let outcome = if redrive {
        admin.redrive(which).await
    } else {
        admin.discard(which).await
    };
    let message = match outcome {
        Ok(outcome) if outcome.not_found.is_empty() => {
            Ok(format!("{} {verb}", plural(outcome.done, "dead letter")))
        }
        Ok(outcome) => Ok(format!(
            "{} {verb}; not there (any more): {}",
            plural(outcome.done, "dead letter"),
            outcome.not_found.join(", ")
        )),
        Err(error) => Err(format!("nothing {verb}: {error}")),
    };
    Ok(back(
        &shared,
        &format!("/queues/{}/dead-letters", url(&name)),
        message,
    ))
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

pub(crate) async fn redrive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    on_dead_letters(shared, headers, name, body, true).await
}

pub(crate) async fn discard(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    on_dead_letters(shared, headers, name, body, false).await
}

// ---------------------------------------------------------------------------
// Delayed signals

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignalsQuery {
    #[serde(flatten)]
    flash: Flash,
    /// The page after this due time and id.
    due: Option<DateTime<Utc>>,
    id: Option<i64>,
}

pub(crate) async fn signals(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<SignalsQuery>,
) -> Result<Response, Failure> {
    let client = client(&shared).await?;
    let database = database_name(&client).await?;
    let delayed = crate::status::delayed_signals(&client).await?;
    let limit = PAGE as i64;
    let rows = client
        .query(sql::DELAYED, &[&query.due, &query.id, &limit])
        .await
        .map_err(pg)?;
    Ok(respond(
        &shared,
        &headers,
        &database,
        Nav::Signals,
        "Delayed signals",
        |form| {
            let mut b = query.flash.html();
            let _ = write!(b, "<h1>Delayed signals</h1><p class=\"muted\">{} waiting for their time; the watcher releases each when it is due.</p>", html::count(delayed.delayed));
            if rows.is_empty() {
                b.push_str("<p class=\"muted\">No delayed signal waits.</p>");
                return b;
            }
            b.push_str(
                "<table><tr><th>id</th><th>signal</th><th>due</th><th>payload</th><th></th></tr>",
            );
            let now = Utc::now();
            for row in &rows {
                let id: i64 = row.get(0);
                let name: String = row.get(1);
                let payload: String = row.get(2);
                // 'infinity' is a timestamptz too: such a signal never falls due.
                let due: Option<DateTime<Utc>> = row.try_get(3).ok();
                let when = match due.map(|due| (due - now).to_std()) {
                    Some(Ok(ahead)) => format!("in {}", html::duration(ahead)),
                    Some(Err(_)) => "due now".to_owned(),
                    None => "never".to_owned(),
                };
                let due = due.map_or_else(|| "infinity".to_owned(), html::time);
                let pretty = serde_json::from_str::<serde_json::Value>(&payload)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or(payload);
                let _ = write!(b, "<tr id=\"signal-{id}\"><td>{id}</td><td><code>{}</code></td><td>{}<br><span class=\"muted\">{}</span></td><td><pre>{}</pre></td><td>{}</td></tr>",
                esc(&name), esc(&due), esc(&when), esc(&pretty),
                form.button("/signals/cancel", &[("id", &id.to_string())], "Cancel", "danger"));
            }
            b.push_str("</table>");
            if rows.len() == PAGE {
                let last = rows.last().and_then(|last| {
                    Some((
                        last.try_get::<_, DateTime<Utc>>(3).ok()?,
                        last.get::<_, i64>(0),
                    ))
                });
                if let Some((due, id)) = last {
                    let _ = write!(b, "<div class=\"pager\"><a href=\"{}/signals?due={}&id={id}\">Next {PAGE} →</a></div>", form.base, url(&due.to_rfc3339()));
                }
            }
            b
        },
    ))
}

pub(crate) async fn cancel_signal(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let fields = checked_post(&shared, &headers, &body)?;
    let id = fields
        .iter()
        .find(|(k, _)| k == "id")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or_else(|| Failure(StatusCode::BAD_REQUEST, "no signal id".to_owned()))?;
    let client = client(&shared).await?;
    let cancelled: bool = client
        .query_one(sql::CANCEL_SIGNAL, &[&id])
        .await
        .map_err(pg)?
        .get(0);
    let outcome = if cancelled {
        Ok(format!("signal {id} cancelled"))
    } else {
        Err(format!(
            "signal {id} was not waiting (released or cancelled already)"
        ))
    };
    Ok(back(&shared, "/signals", outcome))
}

// ---------------------------------------------------------------------------
// Backfills

pub(crate) async fn backfills(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Result<Response, Failure> {
    let client = client(&shared).await?;
    let database = database_name(&client).await?;
    let backfills = crate::backfill::backfills(&client).await?;
    Ok(respond(
        &shared,
        &headers,
        &database,
        Nav::Backfills,
        "Backfills",
        |form| {
            let mut b = flash.html();
            b.push_str("<h1>Backfills</h1>");
            if backfills.is_empty() {
                b.push_str("<p class=\"muted\">No backfill has run here. Start one with <code>dawdle backfill schema.table</code>.</p>");
                return b;
            }
            b.push_str("<table><tr><th>name</th><th>state</th><th>progress</th><th class=\"num\">rows</th><th class=\"num\">rate</th><th>ETA</th><th>started</th><th></th></tr>");
            for bf in &backfills {
                let state = bf.state().as_str();
                let total = bf.rows_total.filter(|t| *t > 0);
                let share = total.map_or(0.0, |t| (bf.rows_read as f64 / t as f64).min(1.0));
                let rows = match total {
                    Some(t) => format!("{} of ~{}", html::count(bf.rows_read), html::count(t)),
                    None => html::count(bf.rows_read),
                };
                let rate = bf.rate().map_or("–".to_owned(), |r| format!("{r:.0}/s"));
                let eta = bf.eta().map_or("–".to_owned(), html::duration);
                let name = bf.name.as_str();
                let mut buttons = String::new();
                if !bf.is_finished() {
                    if bf.paused_at.is_some() {
                        buttons.push_str(&form.button(
                            "/backfills/act",
                            &[("name", name), ("act", "resume")],
                            "Resume",
                            "primary",
                        ));
                    } else {
                        buttons.push_str(&form.button(
                            "/backfills/act",
                            &[("name", name), ("act", "pause")],
                            "Pause",
                            "",
                        ));
                    }
                    buttons.push_str(&form.button(
                        "/backfills/act",
                        &[("name", name), ("act", "cancel")],
                        "Cancel",
                        "danger",
                    ));
                }
                let _ = write!(b, "<tr><td><code>{}</code></td><td><span class=\"pill\">{}</span></td><td><div class=\"bar\"><span style=\"width:{:.1}%\"></span></div></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{buttons}</td></tr>",
                esc(name), esc(state), share * 100.0, esc(&rows), esc(&rate), esc(&eta), esc(&html::time(bf.started_at)));
            }
            b.push_str("</table>");
            b
        },
    ))
}

pub(crate) async fn act_on_backfill(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let fields = checked_post(&shared, &headers, &body)?;
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (name, act) = (get("name"), get("act"));
    let client = client(&shared).await?;
    let done = match act.as_str() {
        "pause" => crate::backfill::pause(&client, &name).await?,
        "resume" => crate::backfill::resume(&client, &name).await?,
        "cancel" => crate::backfill::cancel(&client, &name).await?,
        other => {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?}"),
            ))
        }
    };
    let outcome = if done {
        Ok(format!(
            "backfill {name}: {act} asked; it takes effect at its next batch"
        ))
    } else {
        Err(format!("backfill {name} is not running"))
    };
    Ok(back(&shared, "/backfills", outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_keep_repeated_names() {
        let got = fields(b"csrf=abc&id=1&id=2&note=a+b%26c");
        assert_eq!(
            got,
            [("csrf", "abc"), ("id", "1"), ("id", "2"), ("note", "a b&c")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(first_line("one\ntwo"), "one");
    }
}
