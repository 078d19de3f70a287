// Highlight the cited range of a /view/{doc_id} page and scroll to it.
//
// The citation url ends in #start-end: offsets in the document's text counted in Unicode
// code points (Python string indices). The page holds that text, unchanged, inside
// <article id="text">; this script walks its text nodes, counts code points (JavaScript
// strings count UTF-16 units, which differ for characters outside the BMP), splits the
// nodes at the range's ends and wraps each piece in <mark class="cite">.
"use strict";

(function () {
  const article = document.getElementById("text");
  const status = document.getElementById("cite-status");
  if (!article) {
    return;
  }

  function codePoints(text) {
    let count = 0;
    for (const _ of text) {
      count += 1;
    }
    return count;
  }

  // The UTF-16 index of the code point `n` of `text`.
  function unitIndex(text, n) {
    let index = 0;
    while (n > 0 && index < text.length) {
      const unit = text.charCodeAt(index);
      const pair = unit >= 0xd800 && unit <= 0xdbff && index + 1 < text.length;
      index += pair ? 2 : 1;
      n -= 1;
    }
    return index;
  }

  function say(message) {
    if (!status) {
      return;
    }
    status.textContent = message;
    status.hidden = !message;
  }

  function clear() {
    for (const mark of article.querySelectorAll("mark.cite")) {
      const parent = mark.parentNode;
      while (mark.firstChild) {
        parent.insertBefore(mark.firstChild, mark);
      }
      parent.removeChild(mark);
      parent.normalize();
    }
  }

  function textNodes() {
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    const nodes = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      nodes.push(node);
    }
    return nodes;
  }

  function mark(start, end) {
    const marks = [];
    let position = 0;
    for (const node of textNodes()) {
      const length = codePoints(node.data);
      const from = Math.max(start, position);
      const to = Math.min(end, position + length);
      if (from < to) {
        const a = unitIndex(node.data, from - position);
        const b = unitIndex(node.data, to - position);
        let piece = node;
        if (a > 0) {
          piece = piece.splitText(a);
        }
        if (b - a < piece.data.length) {
          piece.splitText(b - a);
        }
        const wrapper = document.createElement("mark");
        wrapper.className = "cite";
        piece.parentNode.replaceChild(wrapper, piece);
        wrapper.appendChild(piece);
        marks.push(wrapper);
      }
      position += length;
      if (position >= end) {
        break;
      }
    }
    return marks;
  }

  function show() {
    clear();
    const match = /^#(\d+)-(\d+)$/.exec(window.location.hash);
    if (!match) {
      say("");
      return;
    }
    const start = Number(match[1]);
    const end = Number(match[2]);
    const length = Number(article.dataset.length);
    if (!(start < end && end <= length)) {
      say(`The cited range ${start}–${end} is not inside this document (${length} characters).`);
      return;
    }
    if (codePoints(article.textContent) !== length) {
      say("This page's text differs from the document; the highlight may be misplaced.");
    } else {
      say(`Cited: characters ${start}–${end}.`);
    }
    const marks = mark(start, end);
    if (marks.length > 0) {
      marks[0].id = "cited";
      marks[0].tabIndex = -1;
      marks[0].scrollIntoView({ block: "center" });
      marks[0].focus({ preventScroll: true });
    }
  }

  window.addEventListener("hashchange", show);
  show();
})();
