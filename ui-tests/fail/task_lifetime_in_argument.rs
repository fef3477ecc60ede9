use std::borrow::Cow;

#[klaw::task]
async fn greet<'a>(name: Cow<'a, str>) -> String {
    format!("hello {name}")
}

fn main() {}
