//! What `#[dawdle::handler]` registers, and what a registration does when
//! the listener feeds it an event.

use std::sync::Mutex;

use dawdle::event::Subject;
use dawdle::handler::{handlers, Handler, HandlerError};
use dawdle::wire::{Envelope, WireEvent};
use dawdle::{Action, Change, DecodeError, Delete, Insert, Meta, Update, Watched};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(schema = "app", table = "users")]
struct User {
    id: i64,
    name: String,
}

/// What the handlers saw, one list per handler: tests run in parallel.
static WELCOMED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static AUDITED: Mutex<Vec<(Action, i64)>> = Mutex::new(Vec::new());

#[dawdle::handler]
async fn welcome(event: Insert<User>) -> Result<(), String> {
    if event.new.name.is_empty() {
        return Err(format!("user {} has no name", event.new.id));
    }
    WELCOMED.lock().unwrap().push(event.new.name);
    Ok(())
}

#[dawdle::handler(name = "users.renamed")]
async fn renamed(_event: Update<User>) {}

#[dawdle::handler]
async fn farewell(_event: Delete<User>) -> Result<(), std::io::Error> {
    Ok(())
}

mod audit {
    use super::{User, AUDITED};

    #[dawdle::handler]
    pub(super) async fn everything(event: dawdle::Change<User>) {
        AUDITED
            .lock()
            .unwrap()
            .push((event.meta().action, event.meta().id));
    }
}

fn handler(name: &str) -> &'static Handler {
    handlers()
        .into_iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no handler named {name}"))
}

/// One event as the listener reads it off the queue.
fn event(id: i64, action: &str, old: Value, new: Value) -> WireEvent {
    let body = json!({
        "dawdle": 1,
        "events": [{
            "id": id,
            "schema": "app",
            "table": "users",
            "action": action,
            "key": [1],
            "captured_at": "2026-11-27T10:11:12.123456+00:00",
            "txid": "99",
            "old": old,
            "new": new,
        }],
    });
    Envelope::parse(&body.to_string()).unwrap().events.remove(0)
}

/// What the listener does with a handler and an event.
async fn deliver(handler: &Handler, event: &WireEvent) -> Result<(), HandlerError> {
    let arg = (handler.decode)(event).expect("the event decodes");
    (handler.call)(arg).await
}

#[test]
fn registers_every_handler_by_name() {
    let registered: Vec<(&str, &str, &str, &[Action])> = handlers()
        .iter()
        .filter_map(|h| match h.subject {
            Subject::Rows { table, actions } => Some((h.name, table.schema, table.name, actions)),
            Subject::Signal(_) => None,
        })
        .collect();
    assert_eq!(
        registered,
        [
            (
                "handler::audit::everything",
                "app",
                "users",
                &[
                    Action::Insert,
                    Action::Update,
                    Action::Delete,
                    Action::Snapshot
                ][..]
            ),
            ("handler::farewell", "app", "users", &[Action::Delete][..]),
            ("handler::welcome", "app", "users", &[Action::Insert][..]),
            ("users.renamed", "app", "users", &[Action::Update][..]),
        ]
    );
    let Subject::Rows { table, .. } = handler("handler::welcome").subject else {
        panic!("a row handler")
    };
    assert!(std::ptr::eq(table, User::TABLE));
}

#[tokio::test]
async fn decode_and_call_run_the_function() {
    let welcome = handler("handler::welcome");
    let insert = event(7, "insert", Value::Null, json!({"id": 1, "name": "Ada"}));
    deliver(welcome, &insert).await.unwrap();
    assert_eq!(*WELCOMED.lock().unwrap(), ["Ada"]);
}

#[tokio::test]
async fn an_error_becomes_a_handler_error() {
    let welcome = handler("handler::welcome");
    let nameless = event(8, "insert", Value::Null, json!({"id": 2, "name": ""}));
    let error = deliver(welcome, &nameless).await.unwrap_err();
    assert_eq!(error.to_string(), "user 2 has no name");
    assert!(!error.is_panic());
    // The handler's own error comes back as it was returned.
    assert_eq!(error.downcast::<String>().unwrap(), "user 2 has no name");
}

#[tokio::test]
async fn a_change_handler_receives_every_action() {
    let everything = handler("handler::audit::everything");
    let ada = json!({"id": 1, "name": "Ada"});
    let lovelace = json!({"id": 1, "name": "Ada Lovelace"});
    for event in [
        event(1, "insert", Value::Null, ada.clone()),
        event(2, "update", ada, lovelace.clone()),
        event(3, "delete", lovelace, Value::Null),
    ] {
        deliver(everything, &event).await.unwrap();
    }
    assert_eq!(
        *AUDITED.lock().unwrap(),
        [
            (Action::Insert, 1),
            (Action::Update, 2),
            (Action::Delete, 3)
        ]
    );
}

#[test]
fn decode_reports_a_row_that_does_not_fit() {
    let farewell = handler("handler::farewell");
    let without_old = event(9, "delete", Value::Null, Value::Null);
    assert!(matches!(
        (farewell.decode)(&without_old),
        Err(DecodeError::MissingRow { which: "old", .. })
    ));
}

#[tokio::test]
async fn the_function_stays_callable() {
    let meta = Meta {
        id: 1,
        source: None,
        schema: "app".to_owned(),
        table: "users".to_owned(),
        action: Action::Update,
        captured_at: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
        txid: "1".to_owned(),
    };
    let user = User {
        id: 3,
        name: String::new(),
    };
    renamed(Update {
        old: user.clone(),
        new: user.clone(),
        meta: meta.clone(),
    })
    .await;
    let insert = Insert {
        new: user,
        meta: Meta {
            action: Action::Insert,
            ..meta
        },
    };
    assert_eq!(welcome(insert).await, Err("user 3 has no name".to_owned()));
    let _: fn(Change<User>) -> _ = audit::everything;
}
