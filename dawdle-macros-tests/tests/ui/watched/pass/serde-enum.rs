use dawdle::{Encoding, Watched};

/// A PostgreSQL enum: `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mood {
    Sad,
    Ok,
    Happy,
}

#[derive(Debug, serde::Deserialize)]
struct Settings {
    theme: String,
}

#[derive(Watched)]
#[dawdle(table = "people")]
struct Person {
    id: i32,
    #[dawdle(serde)]
    mood: Mood,
    #[dawdle(serde)]
    previous: Option<Mood>,
    #[dawdle(serde)]
    settings: Settings,
}

fn main() {
    assert!(Person::TABLE
        .columns
        .iter()
        .all(|c| c.encoding == Encoding::Json));
    let person = Person::from_json(&serde_json::json!({
        "id": 1,
        "mood": "happy",
        "previous": null,
        "settings": { "theme": "dark" },
    }))
    .unwrap();
    assert_eq!(
        (person.id, person.mood, person.previous),
        (1, Mood::Happy, None)
    );
    assert_eq!(person.settings.theme, "dark");
    let _ = (Mood::Sad, Mood::Ok);
}
