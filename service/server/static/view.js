// The /view/{doc_id} page: highlight the cited range and scroll to it, copy the citation,
// fold the page's menus and notices away.
//
// The citation url ends in #start-end: offsets in the document's text counted in Unicode
// code points (Python string indices). The page holds that text, unchanged, inside
// <article id="text">; this script walks its text nodes, counts code points (JavaScript
// strings count UTF-16 units, which differ for characters outside the BMP), splits the
// nodes at the range's ends and wraps each piece in <mark class="cite">. Folded text
// (<span class="chrome">, hidden by CSS) is still in the DOM, so the count is unchanged.
// The offsets are for links, not for readers: no message shows them.
"use strict";

(function () {
  const article = document.getElementById("text");
  const status = document.getElementById("cite-status");
  const copyButton = document.getElementById("copy-citation");
  const chromeToggle = document.getElementById("chrome-toggle");
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

  function setFolded(folded) {
    article.classList.toggle("folded", folded);
    if (chromeToggle) {
      chromeToggle.setAttribute("aria-expanded", String(!folded));
      chromeToggle.textContent = folded ? chromeToggle.dataset.show : chromeToggle.dataset.hide;
    }
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
      say(status ? status.dataset.outside : "");
      return;
    }
    if (codePoints(article.textContent) !== length) {
      say(status ? status.dataset.differs : "");
    } else {
      say(status ? status.dataset.highlighted : "");
    }
    const marks = mark(start, end);
    if (marks.some((piece) => piece.closest(".chrome"))) {
      setFolded(false); // the citation is in the page's chrome: show it
    }
    if (marks.length > 0) {
      marks[0].id = "cited";
      marks[0].tabIndex = -1;
      marks[0].scrollIntoView({ block: "center" });
      marks[0].focus({ preventScroll: true });
    }
  }

  // The citation as plain text: the quote (the highlighted text, if any), the line the
  // server wrote (title, publisher, date, "not stated" where unknown, the original's link)
  // and the link to this page with the passage highlighted.
  function citationText() {
    const data = copyButton.dataset;
    const quote = Array.from(article.querySelectorAll("mark.cite"), (m) => m.textContent)
      .join("")
      .trim();
    const lines = [];
    if (quote) {
      lines.push(`${data.quoteOpen}${quote}${data.quoteClose}`);
    }
    lines.push(data.citation);
    lines.push(`${data.passage}: ${window.location.href}`);
    return lines.join("\n");
  }

  // navigator.clipboard needs a secure context (https or localhost); elsewhere the
  // selection of a hidden text area is copied.
  async function writeClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    document.body.removeChild(area);
    if (!copied) {
      throw new Error("copy refused");
    }
  }

  if (copyButton) {
    copyButton.addEventListener("click", async () => {
      try {
        await writeClipboard(citationText());
        say(copyButton.dataset.copied);
      } catch (error) {
        say(copyButton.dataset.failed);
      }
    });
  }
  if (chromeToggle) {
    chromeToggle.addEventListener("click", () => {
      setFolded(!article.classList.contains("folded"));
    });
  }
  window.addEventListener("hashchange", show);
  show();
})();
