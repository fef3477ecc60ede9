// Options not separated by commas: the option list does not parse.
#[klaw::task(name = "fetch" blocking)]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
