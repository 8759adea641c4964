use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "moods")]
enum Mood {
    Sad,
    Happy,
}

fn main() {}
