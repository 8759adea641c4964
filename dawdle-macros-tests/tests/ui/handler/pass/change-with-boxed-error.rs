// A handler of every change, with the boxed error anyhow-like crates give.
use dawdle::{Change, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
    name: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[dawdle::handler]
async fn audit(event: Change<User>) -> Result<(), BoxError> {
    let id: i64 = match &event {
        Change::Insert(insert) => insert.new.id,
        Change::Update(update) => update.new.id,
        Change::Delete(delete) => delete.old.id,
        Change::Snapshot(snapshot) => snapshot.row.id,
    };
    let _: u32 = id.try_into()?;
    Ok(())
}

fn main() {
    let [handler] = dawdle::handler::handlers()[..] else {
        panic!("expected one handler");
    };
    assert_eq!(handler.actions(), [dawdle::Action::Insert, dawdle::Action::Update, dawdle::Action::Delete, dawdle::Action::Snapshot]);
}
