//! `TextKey`: a `String` key as the combine table stores it, its bytes in the entry itself when
//! there are at most [`TextKey::INLINE`] of them (23 on 64-bit targets), so that comparing a
//! word with the stored one reads no line but the entry's. Longer keys keep their bytes on the
//! heap, as a `Box<str>`.

use std::mem::ManuallyDrop;

/// A short key's bytes over all but the last byte, its length in the last; or a long key's
/// `Box<str>` (pointer and length) in `words`, with [`LONG`] in the last byte.
#[repr(C)]
pub(crate) struct TextKey {
    words: [usize; 2],
    rest: [u8; 7],
    tag: u8,
}

/// The tag of a key whose bytes are on the heap.
const LONG: u8 = u8::MAX;

impl TextKey {
    /// The longest key kept in place: every byte but the tag.
    pub(crate) const INLINE: usize = std::mem::size_of::<TextKey>() - 1;

    /// Stores `text`: in place if it is short (freeing the `String`), else on the heap.
    #[inline]
    pub(crate) fn new(text: String) -> TextKey {
        let len = text.len();
        if len <= Self::INLINE {
            let mut key = TextKey {
                words: [0; 2],
                rest: [0; 7],
                tag: len as u8,
            };
            // SAFETY: `key` is `INLINE + 1` bytes of plain integers with no padding (`repr(C)`:
            // two words, then 7 bytes, then the tag), and `len` is at most `INLINE`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    text.as_ptr(),
                    (&mut key as *mut TextKey).cast::<u8>(),
                    len,
                )
            };
            key
        } else {
            let boxed = ManuallyDrop::new(text.into_boxed_str());
            TextKey {
                words: [boxed.as_ptr() as usize, len],
                rest: [0; 7],
                tag: LONG,
            }
        }
    }

    /// The key's text.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        let (start, len) = if self.tag == LONG {
            (self.words[0] as *const u8, self.words[1])
        } else {
            ((self as *const TextKey).cast::<u8>(), self.tag as usize)
        };
        // SAFETY: a short key's first `tag` bytes are the UTF-8 it was made from; a long key's
        // words are the pointer and length of the `Box<str>` it owns.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(start, len)) }
    }

    /// The key as a `String` again (a short key's bytes copied into one).
    pub(crate) fn into_string(self) -> String {
        let key = ManuallyDrop::new(self);
        if key.tag == LONG {
            // SAFETY: the words are the parts of a `Box<str>` this key owned, and `key` is not
            // dropped, so it is taken once.
            unsafe { key.take_box() }.into_string()
        } else {
            key.as_str().to_owned()
        }
    }

    /// The `Box<str>` of a long key.
    ///
    /// # Safety
    /// The key is long, and neither it nor its box is used or dropped after this.
    unsafe fn take_box(&self) -> Box<str> {
        let bytes = std::ptr::slice_from_raw_parts_mut(self.words[0] as *mut u8, self.words[1]);
        // SAFETY: per the caller, these are the parts of a `Box<str>` this key owned.
        unsafe { Box::from_raw(bytes as *mut str) }
    }
}

impl Drop for TextKey {
    fn drop(&mut self) {
        if self.tag == LONG {
            // SAFETY: a long key owns its box, and this is its last use.
            drop(unsafe { self.take_box() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_short_and_long_give_back_their_text() {
        assert_eq!(TextKey::INLINE, 2 * std::mem::size_of::<usize>() + 7);
        let longest_short = "x".repeat(TextKey::INLINE);
        let shortest_long = "é".repeat(TextKey::INLINE / 2 + 1);
        for text in ["", "a", "spark", "ünïcödé", &longest_short, &shortest_long] {
            let key = TextKey::new(text.to_string());
            assert_eq!(key.as_str(), text);
            assert_eq!(key.into_string(), text);
        }
        assert_eq!(
            TextKey::new(longest_short.clone()).tag as usize,
            TextKey::INLINE
        );
        assert_eq!(TextKey::new(shortest_long.clone()).tag, LONG);
        // A long key dropped without being taken back frees its box (Miri and sanitizers
        // check it; here it must simply not crash).
        drop(TextKey::new(shortest_long));
    }
}
