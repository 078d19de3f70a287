/*
 * citeqa chat widget: cited answers from the sources, on any page, with one tag:
 *
 *   <script src="https://HOST/widget.js" data-api="https://HOST" defer></script>
 *
 * It adds a <citeqa-chat> element: a button that opens a chat panel. Everything lives in a
 * shadow root, so the host page's CSS does not reach in and ours does not leak out.
 *
 * Every string that comes from the service (answers, quotes, titles, passages) is inserted
 * with textContent or as a Text node, never as HTML: a document containing markup shows
 * the markup as characters and runs nothing.
 *
 * Options, as data- attributes on the script tag (or attributes of <citeqa-chat>):
 *   data-api      base URL of the service (default: where widget.js was loaded from)
 *   data-timeout  milliseconds before a question counts as unanswered (default 15000)
 *   data-title    the panel's heading (default "Ask the sources")
 */
(() => {
  "use strict";

  const script = document.currentScript;
  const scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : "";

  const LANGUAGES = {
    en: "English",
    "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文",
    ja: "日本語",
    ko: "한국어",
  };

  const CSS = `
:host { all: initial; }
* { box-sizing: border-box; }
.root {
  --ink: #1b1f24; --muted: #5b6570; --line: #d9dee3; --paper: #ffffff; --wash: #f4f6f8;
  --accent: #0b3d5c; --accent-ink: #ffffff; --mark: #ffe58a; --error: #a4161a;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC",
    "PingFang SC", "Microsoft YaHei", sans-serif;
  color: var(--ink);
}
button, textarea { font: inherit; color: inherit; }
.launcher {
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  display: inline-flex; align-items: center; gap: 8px;
  padding: 12px 18px; border: 0; border-radius: 999px;
  background: var(--accent); color: var(--accent-ink); font-weight: 600; cursor: pointer;
  box-shadow: 0 6px 20px rgba(11, 61, 92, .35);
}
.launcher:hover { filter: brightness(1.1); }
.launcher:focus-visible, button:focus-visible, a:focus-visible, textarea:focus-visible {
  outline: 3px solid #f2a900; outline-offset: 2px;
}
.launcher svg { width: 18px; height: 18px; }
.panel {
  position: fixed; right: 20px; bottom: 84px; z-index: 2147483001;
  width: min(420px, calc(100vw - 16px)); height: min(660px, calc(100vh - 104px));
  display: flex; flex-direction: column;
  background: var(--paper); border: 1px solid var(--line); border-radius: 14px;
  box-shadow: 0 18px 48px rgba(20, 30, 40, .28); overflow: hidden;
}
.panel[hidden] { display: none; }
header {
  display: flex; align-items: flex-start; gap: 12px; padding: 14px 16px 12px;
  background: var(--accent); color: var(--accent-ink);
}
header h2 { margin: 0; font-size: 17px; line-height: 1.3; }
header p { margin: 2px 0 0; font-size: 13px; opacity: .85; }
header .close {
  margin-left: auto; border: 0; background: transparent; color: inherit; cursor: pointer;
  font-size: 22px; line-height: 1; padding: 2px 6px; border-radius: 6px;
}
.log { flex: 1; overflow-y: auto; padding: 14px 16px; background: var(--wash); }
.empty { color: var(--muted); font-size: 14px; }
.empty ul { padding-left: 18px; margin: 6px 0 0; }
.empty button {
  border: 0; background: none; padding: 0; color: var(--accent); text-decoration: underline;
  cursor: pointer; text-align: left;
}
.q {
  margin: 12px 0 8px auto; max-width: 85%; width: fit-content; padding: 8px 12px;
  background: var(--accent); color: var(--accent-ink); border-radius: 12px 12px 2px 12px;
  white-space: pre-wrap; overflow-wrap: anywhere;
}
.a {
  margin: 0 0 12px; padding: 12px; background: var(--paper); border: 1px solid var(--line);
  border-radius: 12px 12px 12px 2px; overflow-wrap: anywhere;
}
.answer-text { margin: 0 0 6px; font-size: 17px; font-weight: 650; }
.in-context {
  margin: 0; font-family: Georgia, "Noto Serif", "Noto Serif CJK SC", "Songti SC", serif;
  color: #2c333a;
}
mark { background: var(--mark); color: inherit; padding: 0 1px; border-radius: 2px; }
.meta { margin: 6px 0 0; font-size: 12.5px; color: var(--muted); }
.label { margin: 12px 0 6px; font-size: 12px; font-weight: 700; letter-spacing: .04em;
  text-transform: uppercase; color: var(--muted); }
.card {
  display: block; margin: 0 0 8px; padding: 10px 12px; border: 1px solid var(--line);
  border-left: 4px solid var(--accent); border-radius: 8px; background: var(--paper);
  color: inherit; text-decoration: none;
}
.card:hover { background: #fbfcfd; border-color: #b9c3cc; border-left-color: var(--accent); }
.card .title { display: block; font-weight: 650; font-size: 14px; }
.card .source { display: block; font-size: 12.5px; color: var(--muted); margin-top: 2px; }
.card blockquote {
  margin: 6px 0 0; font-family: Georgia, "Noto Serif", "Noto Serif CJK SC", serif;
  font-size: 14px; color: #2c333a;
}
.card .open { display: block; margin-top: 6px; font-size: 12.5px; color: var(--accent);
  font-weight: 600; }
.noanswer .headline { margin: 0 0 4px; font-weight: 700; }
.reason { margin: 0; font-size: 13px; color: var(--muted); }
.status { margin: 0 0 12px; color: var(--muted); font-size: 14px; display: flex; gap: 8px;
  align-items: center; }
.dots { display: inline-flex; gap: 3px; }
.dots i { width: 6px; height: 6px; border-radius: 50%; background: var(--muted);
  animation: blink 1s infinite ease-in-out; }
.dots i:nth-child(2) { animation-delay: .15s; } .dots i:nth-child(3) { animation-delay: .3s; }
@keyframes blink { 0%, 80%, 100% { opacity: .2; } 40% { opacity: 1; } }
@media (prefers-reduced-motion: reduce) { .dots i { animation: none; opacity: .7; } }
.error { border-color: #e8b4b6; background: #fff6f6; }
.error .headline { margin: 0 0 4px; font-weight: 700; color: var(--error); }
.retry {
  margin-top: 8px; padding: 6px 14px; border: 1px solid var(--error); border-radius: 999px;
  background: var(--paper); color: var(--error); font-weight: 600; cursor: pointer;
}
form { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid var(--line);
  background: var(--paper); }
textarea {
  flex: 1; min-height: 44px; max-height: 140px; resize: none; padding: 10px 12px;
  border: 1px solid #b9c3cc; border-radius: 10px; background: var(--paper);
}
.send {
  align-self: flex-end; min-width: 44px; min-height: 44px; padding: 0 14px; border: 0;
  border-radius: 10px; background: var(--accent); color: var(--accent-ink); font-weight: 600;
  cursor: pointer;
}
.send:disabled { opacity: .5; cursor: default; }
.hint { margin: 0; padding: 0 14px 10px; font-size: 11.5px; color: var(--muted);
  background: var(--paper); }
.modes { display: flex; gap: 4px; padding: 8px 12px 0; background: var(--paper); }
.modes button {
  flex: 1; padding: 6px 10px; border: 1px solid var(--line); border-radius: 999px;
  background: var(--paper); color: var(--muted); font-size: 13px; font-weight: 600;
  cursor: pointer;
}
.modes button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent);
  color: var(--accent-ink); }
.verdict { display: inline-block; margin: 0 0 6px; padding: 3px 10px; border-radius: 999px;
  font-weight: 700; font-size: 14px; }
.verdict.supported { background: #e3f4e8; color: #1d6b34; }
.verdict.contradicted { background: #fde8e8; color: #a4161a; }
.verdict.not_found { background: #eceff2; color: #3d4650; }
.stance { display: inline-block; margin-left: 6px; font-size: 11.5px; font-weight: 700;
  text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
mark.mismatch { background: #ffc9c9; text-decoration: underline wavy #a4161a; }
.mismatches { margin: 6px 0 0; padding-left: 18px; font-size: 13px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  .panel { right: 8px; left: 8px; width: auto; bottom: 76px; height: calc(100vh - 92px); }
  .launcher { right: 12px; bottom: 12px; }
}
`;

  const EXAMPLES = [
    "Who organized the NEAR International Forum 2023?",
    "中日韩地震减灾三边会议由哪些机构举行？",
    "Which kinds of economy will the secretariat focus on to stabilize supply chains?",
  ];

  /** An element with attributes and children; strings become Text nodes, never HTML. */
  function h(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Text with [start, end) ranges wrapped in <mark>, as DOM nodes. */
  function marked(text, ranges) {
    const parts = [];
    let position = 0;
    const sorted = [...(ranges || [])]
      .map(([start, end]) => [Math.max(0, start), Math.min(text.length, end)])
      .filter(([start, end]) => end > start)
      .sort((a, b) => a[0] - b[0]);
    for (const [start, end] of sorted) {
      if (start < position) continue;
      if (start > position) parts.push(text.slice(position, start));
      parts.push(h("mark", {}, text.slice(start, end)));
      position = end;
    }
    if (position < text.length) parts.push(text.slice(position));
    return parts;
  }

  /** About ``limit`` characters of ``text`` around its first highlighted range. */
  function excerpt(text, ranges, limit = 260) {
    if (text.length <= limit) return { text, ranges };
    const first = (ranges && ranges.length) ? Math.min(...ranges.map((r) => r[0])) : 0;
    let start = Math.max(0, Math.min(first - 60, text.length - limit));
    const end = Math.min(text.length, start + limit);
    const prefix = start > 0 ? "…" : "";
    const suffix = end < text.length ? "…" : "";
    const shifted = (ranges || [])
      .map(([a, b]) => [a - start + prefix.length, b - start + prefix.length])
      .filter(([a, b]) => b > prefix.length && a < end - start + prefix.length);
    return { text: prefix + text.slice(start, end) + suffix, ranges: shifted };
  }

  function languageName(code) {
    return LANGUAGES[code] || code || "";
  }

  class CiteqaChat extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this.pending = null;
      this.mode = "ask";
    }

    get api() {
      const configured = this.getAttribute("api") ?? (script && script.dataset.api);
      const base = configured || scriptOrigin || location.origin;
      return base.replace(/\/+$/, "");
    }

    get timeout() {
      const value = Number(this.getAttribute("timeout") ?? (script && script.dataset.timeout));
      return Number.isFinite(value) && value > 0 ? value : 15000;
    }

    link(path) {
      return new URL(path, this.api + "/").href;
    }

    connectedCallback() {
      if (this.shadowRoot.childElementCount) return;
      const sheet = "adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype;
      if (sheet) {
        // A constructed sheet is not an inline <style>, so strict host CSPs allow it.
        const styles = new CSSStyleSheet();
        styles.replaceSync(CSS);
        this.shadowRoot.adoptedStyleSheets = [styles];
      } else {
        this.shadowRoot.append(h("style", {}, CSS));
      }
      const title =
        this.getAttribute("heading") || (script && script.dataset.title) || "Ask the sources";

      this.launcher = h(
        "button",
        {
          class: "launcher",
          type: "button",
          "aria-expanded": "false",
          "aria-controls": "citeqa-panel",
          onclick: () => this.toggle(),
        },
        this.icon(),
        title
      );
      this.log = h("div", {
        class: "log",
        role: "log",
        "aria-live": "polite",
        "aria-label": "Conversation",
        tabindex: "0",
      });
      this.log.append(this.welcome());
      this.input = h("textarea", {
        id: "citeqa-question",
        rows: "1",
        maxlength: "2000",
        placeholder: "Ask about China–Japan–ROK cooperation…",
        "aria-describedby": "citeqa-hint",
        onkeydown: (event) => this.onKey(event),
      });
      this.send = h("button", { class: "send", type: "submit", "aria-label": "Send question" }, "Ask");
      const form = h(
        "form",
        { onsubmit: (event) => { event.preventDefault(); this.submit(); } },
        (this.inputLabel = h("label", { class: "sr-only", for: "citeqa-question" }, "Your question")),
        this.input,
        this.send
      );
      this.panel = h(
        "section",
        {
          class: "panel",
          id: "citeqa-panel",
          role: "dialog",
          "aria-modal": "false",
          "aria-labelledby": "citeqa-title",
          hidden: true,
          onkeydown: (event) => { if (event.key === "Escape") this.close(); },
        },
        h(
          "header",
          {},
          h(
            "div",
            {},
            h("h2", { id: "citeqa-title" }, title),
            h("p", {}, "Quoted answers from the sources, in English and Chinese")
          ),
          h(
            "button",
            { class: "close", type: "button", "aria-label": "Close", onclick: () => this.close() },
            "×"
          )
        ),
        h(
          "div",
          { class: "modes", role: "group", "aria-label": "Mode" },
          this.modeButton("ask", "Ask a question"),
          this.modeButton("verify", "Check a claim")
        ),
        this.log,
        form,
        h(
          "p",
          { class: "hint", id: "citeqa-hint" },
          "Enter sends, Shift+Enter starts a new line. Answers are quotes, never generated text."
        )
      );
      this.shadowRoot.append(h("div", { class: "root" }, this.panel, this.launcher));
    }

    modeButton(mode, label) {
      const button = h(
        "button",
        { type: "button", "aria-pressed": mode === "ask" ? "true" : "false", "data-mode": mode,
          onclick: () => this.setMode(mode) },
        label
      );
      return button;
    }

    setMode(mode) {
      this.mode = mode;
      for (const button of this.shadowRoot.querySelectorAll(".modes button")) {
        button.setAttribute("aria-pressed", button.dataset.mode === mode ? "true" : "false");
      }
      this.input.placeholder =
        mode === "verify"
          ? "Paste a claim to check against the sources…"
          : "Ask about China–Japan–ROK cooperation…";
      this.inputLabel.textContent = mode === "verify" ? "Claim to check" : "Your question";
      this.send.textContent = mode === "verify" ? "Check" : "Ask";
      this.input.focus();
    }

    icon() {
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("aria-hidden", "true");
      const path = document.createElementNS(ns, "path");
      path.setAttribute("fill", "currentColor");
      path.setAttribute(
        "d",
        "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 5v2h10V9H7zm0 4v2h7v-2H7z"
      );
      svg.append(path);
      return svg;
    }

    welcome() {
      return h(
        "div",
        { class: "empty" },
        h("p", { style: null }, "Ask a question; the answer is quoted from a source, with a link to it. For example:"),
        h(
          "ul",
          {},
          EXAMPLES.map((example) =>
            h("li", {}, h("button", { type: "button", onclick: () => this.ask(example) }, example))
          )
        )
      );
    }

    toggle() {
      if (this.panel.hidden) this.open();
      else this.close();
    }

    open() {
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-expanded", "true");
      this.input.focus();
    }

    close() {
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.focus();
    }

    onKey(event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    }

    submit() {
      const question = this.input.value.trim();
      if (!question || this.pending) return;
      this.input.value = "";
      this.ask(question);
    }

    /** Scroll so that ``node`` (the newest question) is at the top of the conversation. */
    reveal(node) {
      this.log.scrollTop = Math.max(0, node.offsetTop - this.log.offsetTop - 8);
    }

    async ask(question, retryOf, mode) {
      mode = mode || this.mode;
      if (this.pending) return;
      if (this.panel.hidden) this.open();
      const empty = this.log.querySelector(".empty");
      if (empty) empty.remove();
      const bubble = retryOf ? retryOf.previousElementSibling : h("p", { class: "q", dir: "auto" }, question);
      if (!retryOf) this.log.append(bubble);
      const status = h(
        "p",
        { class: "status", role: "status" },
        h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
        mode === "verify" ? "Checking the claim against the sources…" : "Searching the sources…"
      );
      const slot = retryOf || h("div");
      slot.replaceChildren(status);
      if (!retryOf) this.log.append(slot);
      this.log.setAttribute("aria-busy", "true");
      this.send.disabled = true;
      this.reveal(bubble);

      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.timeout);
      this.pending = controller;
      let body = null;
      let problem = null;
      try {
        const path = mode === "verify" ? "/verify" : "/ask";
        const payload = mode === "verify" ? { claim: question, top_k: 4 } : { question, top_k: 5 };
        const response = await fetch(this.api + path, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(payload),
          signal: controller.signal,
        });
        body = await response.json().catch(() => null);
        if (!response.ok) {
          const message = body && body.error && body.error.message;
          problem = message
            ? `The service refused the question: ${message}`
            : `The service answered with an error (HTTP ${response.status}).`;
        }
      } catch (error) {
        problem =
          error && error.name === "AbortError"
            ? `The service did not answer within ${Math.round(this.timeout / 1000)} seconds.`
            : "The service cannot be reached. Check your connection and try again.";
      } finally {
        clearTimeout(timer);
        this.pending = null;
        this.send.disabled = false;
        this.log.removeAttribute("aria-busy");
      }
      const view = mode === "verify" ? (b) => this.verdictView(b) : (b) => this.resultView(b);
      slot.replaceChildren(problem ? this.errorView(problem, question, slot, mode) : view(body));
      this.reveal(bubble);
    }

    errorView(message, question, slot, mode) {
      return h(
        "div",
        { class: "a error", role: "alert" },
        h("p", { class: "headline" }, "No answer: something went wrong"),
        h("p", { class: "reason" }, message),
        h("button", { class: "retry", type: "button", onclick: () => this.ask(question, slot, mode) }, "Retry")
      );
    }

    resultView(body) {
      const answer = body.answer;
      const passages = body.passages || [];
      if (!answer) {
        return h(
          "div",
          { class: "a noanswer" },
          h("p", { class: "headline" }, "No answer in the sources"),
          body.abstain_reason ? h("p", { class: "reason" }, body.abstain_reason) : null,
          passages.length ? h("p", { class: "label" }, "Nearest passages") : null,
          passages.slice(0, 3).map((passage) => this.passageCard(passage))
        );
      }
      const citation = answer.citation;
      const start = citation.char_start - answer.sentence_start;
      const end = citation.char_end - answer.sentence_start;
      const whole = start <= 0 && end >= answer.sentence.length;
      const others = passages.filter(
        (p) => !(p.doc_id === citation.doc_id && p.char_start <= citation.char_start && citation.char_end <= p.char_end)
      );
      const source = passages.find((p) => p.doc_id === citation.doc_id);
      return h(
        "div",
        { class: "a answer" },
        whole ? null : h("p", { class: "answer-text", lang: answer.language }, answer.text),
        h("p", { class: "in-context", lang: answer.language }, marked(answer.sentence, [[start, end]])),
        h(
          "p",
          { class: "meta" },
          `Confidence ${Math.round(answer.confidence * 100)}%` +
            ` · quoted in ${languageName(answer.language)}`
        ),
        h("p", { class: "label" }, "Source"),
        this.card({
          title: citation.title || citation.doc_id,
          source: citation.source || (source && source.source),
          published: citation.published,
          language: answer.language,
          quote: marked(answer.sentence, [[start, end]]),
          href: this.link(citation.url),
          cta: "Open the source at this quote",
        }),
        others.length ? h("p", { class: "label" }, "Also relevant") : null,
        others.slice(0, 2).map((passage) => this.passageCard(passage))
      );
    }

    verdictView(body) {
      const labels = {
        supported: "Supported by the sources",
        contradicted: "Contradicted by the sources",
        not_found: "Not found in the sources",
      };
      const evidence = body.evidence || [];
      const mismatches = evidence.flatMap((e) => e.mismatches);
      return h(
        "div",
        { class: "a claim" },
        h("p", { class: `verdict ${body.verdict}` }, labels[body.verdict] || body.verdict),
        h("p", { class: "meta" }, `Confidence ${Math.round(body.confidence * 100)}%`),
        mismatches.length
          ? h(
              "ul",
              { class: "mismatches" },
              mismatches.map((m) =>
                h("li", {}, `${m.kind}: the claim says “${m.claim_text}”, the source says “${m.evidence_text}”`)
              )
            )
          : null,
        evidence.length ? h("p", { class: "label" }, "Evidence") : null,
        evidence.map((item) => this.evidenceCard(item))
      );
    }

    evidenceCard(item) {
      const c = item.citation;
      const ranges = [];
      for (const m of item.mismatches) {
        const at = item.quote.indexOf(m.evidence_text);
        if (at >= 0) ranges.push([at, at + m.evidence_text.length]);
      }
      const quote = marked(item.quote, ranges);
      for (const node of quote) if (node instanceof HTMLElement) node.className = "mismatch";
      const stances = { supports: "supports", contradicts: "contradicts", related: "related" };
      const card = this.card({
        title: c.title || c.doc_id,
        source: c.source,
        published: c.published,
        language: null,
        quote,
        href: this.link(c.url),
        cta: "Open the source at this quote",
      });
      card.querySelector(".title").append(h("span", { class: "stance" }, stances[item.stance] || item.stance));
      return card;
    }

    passageCard(passage) {
      const cut = excerpt(passage.text, passage.highlights);
      return this.card({
        title: passage.title || passage.doc_id,
        source: passage.source,
        published: passage.published,
        language: passage.language,
        quote: marked(cut.text, cut.ranges),
        href: this.link(passage.url),
        cta: "Open the passage",
      });
    }

    card({ title, source, published, language, quote, href, cta }) {
      const facts = [source, published, languageName(language)].filter(Boolean).join(" · ");
      return h(
        "a",
        { class: "card", href, target: "_blank", rel: "noopener" },
        h("span", { class: "title" }, title),
        facts ? h("span", { class: "source" }, facts) : null,
        h("blockquote", { lang: language }, quote),
        h("span", { class: "open" }, cta, " →")
      );
    }
  }

  if (!customElements.get("citeqa-chat")) customElements.define("citeqa-chat", CiteqaChat);

  function mount() {
    if (!document.querySelector("citeqa-chat")) document.body.append(document.createElement("citeqa-chat"));
  }
  if (script) {
    if (document.body) mount();
    else document.addEventListener("DOMContentLoaded", mount);
  }
})();
