use dawdle::{Events, Watched};

#[derive(Watched)]
#[dawdle(table = "Audit Log", schema = "audit")]
#[dawdle(events(insert, delete))]
struct Entry {
    id: i64,
    #[dawdle(rename = "Message Text")]
    message: String,
}

fn main() {
    let table = Entry::TABLE;
    assert_eq!((table.schema, table.name), ("audit", "Audit Log"));
    assert_eq!(
        table.events,
        Events {
            insert: true,
            update: false,
            delete: true,
            truncate: false,
        }
    );
    let column = table.column("Message Text").unwrap();
    assert_eq!(column.field, "message");
}
