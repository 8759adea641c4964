use dawdle::Watched;

enum Mood {
    Sad,
    Happy,
}

#[derive(Watched)]
#[dawdle(table = "people")]
struct Person {
    id: i32,
    #[dawdle(serde)]
    mood: Mood,
}

fn main() {}
