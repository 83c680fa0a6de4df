//! PLACEHOLDER: the sanitizer is being written.
pub fn sanitize(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}
