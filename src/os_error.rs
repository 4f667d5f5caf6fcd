//! How an operating-system error reads in our messages: Rust's text without its "(os error N)"
//! suffix, lower case, as Python's `strerror` does in uvicorn's messages.

/// `"No such file or directory (os error 2)"` -> `"no such file or directory"`.
pub fn reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    text.split(" (os error").next().unwrap_or(&text).to_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn drops_the_code_and_lowercases() {
        let error = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(super::reason(&error), "no such file or directory");
    }
}
