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


  // Characters written differently in the two Chinese scripts (simplified, traditional):
  // which of them a question uses says which script its reader writes.
  const SIMPLIFIED = "这们会国说对时过还发经为问与个来见长门东话语书后间开关没实现动进点体学电华韩议举处际区务领导协织边机构组称项该并两";
  const TRADITIONAL = "這們會國說對時過還發經為問與個來見長門東話語書後間開關沒實現動進點體學電華韓議舉處際區務領導協織邊機構組稱項該並兩";

  /** The language a reader wrote ``text`` in: en, zh-Hans, zh-Hant, ja or ko. */
  function readerLanguage(text) {
    if (/[\u3040-\u30ff]/.test(text)) return "ja";
    if (/[\uac00-\ud7af\u1100-\u11ff]/.test(text)) return "ko";
    if (!/[\u4e00-\u9fff]/.test(text)) return "en";
    let simplified = 0;
    let traditional = 0;
    for (const char of text) {
      if (SIMPLIFIED.includes(char)) simplified += 1;
      if (TRADITIONAL.includes(char)) traditional += 1;
    }
    return traditional > simplified ? "zh-Hant" : "zh-Hans";
  }

  const VIEW_LANGUAGES = ["en", "zh-Hans", "zh-Hant"]; // the /view page's labels
  const MAX_TURNS = 5; // the service reads at most five previous turns
  const MAX_SHOWN = 30; // exchanges kept across reloads

  /** A claim written in quotation marks is a quote to trace ("check as a quote"). */
  function isQuoted(text) {
    return /^\s*["“”「『«].+["“”」』»]\s*$/su.test(text);
  }

  function unquoted(text) {
    return text.trim().replace(/^["“”「『«]/u, "").replace(/["“”」』»]$/u, "");
  }

  const percent = (value) => `${Math.round(value * 100)}%`;

  // The widget's words in each language a reader may ask in.
  const WORDS = {
    en: {
      languages: { en: "English", "zh-Hans": "Simplified Chinese", "zh-Hant": "Traditional Chinese", ja: "Japanese", ko: "Korean" },
      quoteKinds: { exact: "Quoted exactly", normalised: "Quoted exactly (punctuation or script aside)",
        near: "Quoted with changes", translated: "A translation of the source", none: "No source says this" },
      changed: (quote, source) => `the quote says “${quote}”, the source “${source}”`,
      added: (quote) => `the quote adds “${quote}”`,
      dropped: (source) => `the quote leaves out “${source}”`,
      assumed: (subject) => `Taken as a question about “${subject}”, from your previous question.`,
      newConversation: "New conversation",
      copyQuote: "Copy quote", copyCitation: "Copy citation", share: "Copy link",
      copied: "Copied", report: "Report a wrong answer", reportNote: "What is wrong?",
      sendReport: "Send", reported: "Thank you: the newsroom will review it.",
      reportFailed: "The report could not be sent.", notStated: "not stated",
      searching: "Searching the sources…",
      checking: "Checking the claim against the sources…",
      noAnswer: "No answer in the sources",
      nearest: "Nearest passages",
      answered: (c, language) => `Confidence ${percent(c)} · quoted in ${WORDS.en.languages[language] || language}`,
      source: "Source",
      alsoRelevant: "Also relevant",
      openQuote: "Open the source at this quote",
      openPassage: "Open the passage",
      evidence: "Evidence",
      confidence: (c) => `Confidence ${percent(c)}`,
      verdicts: {
        supported: "Supported by the sources",
        contradicted: "Contradicted by the sources",
        not_found: "Not found in the sources",
      },
      stances: { supports: "supports", contradicts: "contradicts", related: "related" },
      kinds: { number: "number", date: "date", ordinal: "rank", person: "person",
        place: "place", organization: "organisation" },
      mismatch: (m, kind) => `${kind}: the claim says “${m.claim_text}”, the source says “${m.evidence_text}”`,
      wrong: "No answer: something went wrong",
      retry: "Retry",
      refused: (message) => `The service refused the question: ${message}`,
      failed: (status) => `The service answered with an error (HTTP ${status}).`,
      late: (seconds) => `The service did not answer within ${seconds} seconds.`,
      offline: "The service cannot be reached. Check your connection and try again.",
    },
    "zh-Hans": {
      languages: { en: "英文", "zh-Hans": "简体中文", "zh-Hant": "繁体中文", ja: "日文", ko: "韩文" },
      quoteKinds: { exact: "引文与原文一致", normalised: "引文与原文一致（标点或字体不同）",
        near: "引文有改动", translated: "原文的译文", none: "没有找到出处" },
      changed: (quote, source) => `引文为“${quote}”，原文为“${source}”`,
      added: (quote) => `引文多出“${quote}”`,
      dropped: (source) => `引文略去了原文的“${source}”`,
      assumed: (subject) => `按上一个问题理解为关于“${subject}”的提问。`,
      newConversation: "新对话",
      copyQuote: "复制引文", copyCitation: "复制引用信息", share: "复制链接",
      copied: "已复制", report: "报告错误答案", reportNote: "哪里有错？",
      sendReport: "发送", reported: "谢谢，编辑部会核查。",
      reportFailed: "报告未能发送。", notStated: "未注明",
      searching: "正在检索资料…",
      checking: "正在对照资料核查这一说法…",
      noAnswer: "资料中没有找到答案",
      nearest: "最接近的段落",
      answered: (c, language) => `置信度 ${percent(c)} · 引自${WORDS["zh-Hans"].languages[language] || language}原文`,
      source: "出处",
      alsoRelevant: "相关段落",
      openQuote: "打开原文并定位到引文",
      openPassage: "打开该段落",
      evidence: "依据",
      confidence: (c) => `置信度 ${percent(c)}`,
      verdicts: { supported: "资料支持这一说法", contradicted: "资料与这一说法不符",
        not_found: "资料中未找到相关内容" },
      stances: { supports: "支持", contradicts: "不符", related: "相关" },
      kinds: { number: "数字", date: "日期", ordinal: "序次", person: "人物", place: "地点",
        organization: "机构" },
      mismatch: (m, kind) => `${kind}：说法为“${m.claim_text}”，资料为“${m.evidence_text}”`,
      wrong: "出错了，没有得到答案",
      retry: "重试",
      refused: (message) => `服务拒绝了这个问题：${message}`,
      failed: (status) => `服务返回错误（HTTP ${status}）。`,
      late: (seconds) => `服务在 ${seconds} 秒内没有回应。`,
      offline: "无法连接服务，请检查网络后重试。",
    },
    "zh-Hant": {
      languages: { en: "英文", "zh-Hans": "簡體中文", "zh-Hant": "繁體中文", ja: "日文", ko: "韓文" },
      quoteKinds: { exact: "引文與原文一致", normalised: "引文與原文一致（標點或字體不同）",
        near: "引文有改動", translated: "原文的譯文", none: "沒有找到出處" },
      changed: (quote, source) => `引文為「${quote}」，原文為「${source}」`,
      added: (quote) => `引文多出「${quote}」`,
      dropped: (source) => `引文略去了原文的「${source}」`,
      assumed: (subject) => `按上一個問題理解為關於「${subject}」的提問。`,
      newConversation: "新對話",
      copyQuote: "複製引文", copyCitation: "複製引用資訊", share: "複製連結",
      copied: "已複製", report: "回報錯誤答案", reportNote: "哪裡有錯？",
      sendReport: "送出", reported: "謝謝，編輯部會核查。",
      reportFailed: "回報未能送出。", notStated: "未註明",
      searching: "正在檢索資料…",
      checking: "正在對照資料核查這一說法…",
      noAnswer: "資料中沒有找到答案",
      nearest: "最接近的段落",
      answered: (c, language) => `置信度 ${percent(c)} · 引自${WORDS["zh-Hant"].languages[language] || language}原文`,
      source: "出處",
      alsoRelevant: "相關段落",
      openQuote: "打開原文並定位到引文",
      openPassage: "打開該段落",
      evidence: "依據",
      confidence: (c) => `置信度 ${percent(c)}`,
      verdicts: { supported: "資料支持這一說法", contradicted: "資料與這一說法不符",
        not_found: "資料中未找到相關內容" },
      stances: { supports: "支持", contradicts: "不符", related: "相關" },
      kinds: { number: "數字", date: "日期", ordinal: "序次", person: "人物", place: "地點",
        organization: "機構" },
      mismatch: (m, kind) => `${kind}：說法為「${m.claim_text}」，資料為「${m.evidence_text}」`,
      wrong: "出錯了，沒有得到答案",
      retry: "重試",
      refused: (message) => `服務拒絕了這個問題：${message}`,
      failed: (status) => `服務返回錯誤（HTTP ${status}）。`,
      late: (seconds) => `服務在 ${seconds} 秒內沒有回應。`,
      offline: "無法連接服務，請檢查網路後重試。",
    },
    ja: {
      languages: { en: "英語", "zh-Hans": "中国語（簡体字）", "zh-Hant": "中国語（繁体字）", ja: "日本語", ko: "韓国語" },
      quoteKinds: { exact: "原文どおりの引用", normalised: "原文どおりの引用（句読点・字体の違いのみ）",
        near: "改変のある引用", translated: "原文の翻訳", none: "出典が見つかりません" },
      changed: (quote, source) => `引用は「${quote}」、原文は「${source}」`,
      added: (quote) => `引用には原文にない「${quote}」がある`,
      dropped: (source) => `引用は原文の「${source}」を省いている`,
      assumed: (subject) => `前の質問の「${subject}」についての質問として答えています。`,
      newConversation: "新しい会話",
      copyQuote: "引用をコピー", copyCitation: "出典情報をコピー", share: "リンクをコピー",
      copied: "コピーしました", report: "誤った答えを報告", reportNote: "どこが誤っていますか？",
      sendReport: "送信", reported: "ありがとうございます。編集部が確認します。",
      reportFailed: "報告を送信できませんでした。", notStated: "記載なし",
      searching: "資料を検索しています…",
      checking: "資料と照らし合わせています…",
      noAnswer: "資料に答えが見つかりません",
      nearest: "近い段落",
      answered: (c, language) => `確信度 ${percent(c)} · ${WORDS.ja.languages[language] || language}の原文から引用`,
      source: "出典",
      alsoRelevant: "関連する段落",
      openQuote: "原文の引用箇所を開く",
      openPassage: "段落を開く",
      evidence: "根拠",
      confidence: (c) => `確信度 ${percent(c)}`,
      verdicts: { supported: "資料はこの主張を裏付けています", contradicted: "資料はこの主張と食い違います",
        not_found: "資料に該当する記述がありません" },
      stances: { supports: "裏付け", contradicts: "食い違い", related: "関連" },
      kinds: { number: "数", date: "日付", ordinal: "回次", person: "人物", place: "場所",
        organization: "組織" },
      mismatch: (m, kind) => `${kind}：主張は「${m.claim_text}」、資料は「${m.evidence_text}」`,
      wrong: "エラーのため答えられませんでした",
      retry: "再試行",
      refused: (message) => `質問を受け付けられませんでした：${message}`,
      failed: (status) => `サービスがエラーを返しました（HTTP ${status}）。`,
      late: (seconds) => `${seconds} 秒以内に応答がありませんでした。`,
      offline: "サービスに接続できません。接続を確認して再試行してください。",
    },
    ko: {
      languages: { en: "영어", "zh-Hans": "중국어(간체)", "zh-Hant": "중국어(번체)", ja: "일본어", ko: "한국어" },
      quoteKinds: { exact: "원문 그대로의 인용", normalised: "원문 그대로의 인용(문장부호·자체 차이만)",
        near: "바뀐 곳이 있는 인용", translated: "원문의 번역", none: "출처를 찾지 못했습니다" },
      changed: (quote, source) => `인용은 “${quote}”, 원문은 “${source}”`,
      added: (quote) => `인용에는 원문에 없는 “${quote}”가 있다`,
      dropped: (source) => `인용은 원문의 “${source}”를 뺐다`,
      assumed: (subject) => `이전 질문의 ‘${subject}’에 관한 질문으로 답합니다.`,
      newConversation: "새 대화",
      copyQuote: "인용문 복사", copyCitation: "출처 정보 복사", share: "링크 복사",
      copied: "복사됨", report: "잘못된 답 신고", reportNote: "무엇이 잘못되었나요?",
      sendReport: "보내기", reported: "감사합니다. 편집부가 확인합니다.",
      reportFailed: "신고를 보내지 못했습니다.", notStated: "명시되지 않음",
      searching: "자료를 찾는 중…",
      checking: "자료와 대조하는 중…",
      noAnswer: "자료에서 답을 찾지 못했습니다",
      nearest: "가장 가까운 단락",
      answered: (c, language) => `신뢰도 ${percent(c)} · ${WORDS.ko.languages[language] || language} 원문에서 인용`,
      source: "출처",
      alsoRelevant: "관련 단락",
      openQuote: "원문의 인용 위치 열기",
      openPassage: "단락 열기",
      evidence: "근거",
      confidence: (c) => `신뢰도 ${percent(c)}`,
      verdicts: { supported: "자료가 이 주장을 뒷받침합니다", contradicted: "자료가 이 주장과 다릅니다",
        not_found: "자료에서 관련 내용을 찾지 못했습니다" },
      stances: { supports: "뒷받침", contradicts: "불일치", related: "관련" },
      kinds: { number: "숫자", date: "날짜", ordinal: "차수", person: "인물", place: "장소",
        organization: "기관" },
      mismatch: (m, kind) => `${kind}: 주장은 “${m.claim_text}”, 자료는 “${m.evidence_text}”`,
      wrong: "오류로 답을 받지 못했습니다",
      retry: "다시 시도",
      refused: (message) => `서비스가 질문을 거부했습니다: ${message}`,
      failed: (status) => `서비스가 오류를 반환했습니다 (HTTP ${status}).`,
      late: (seconds) => `${seconds}초 안에 응답이 없었습니다.`,
      offline: "서비스에 연결할 수 없습니다. 연결을 확인하고 다시 시도하세요.",
    },
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
header .restart {
  margin-left: auto; border: 1px solid rgba(255, 255, 255, .5); background: transparent;
  color: inherit; cursor: pointer; font-size: 12.5px; padding: 3px 10px; border-radius: 999px;
  white-space: nowrap;
}
.assumed { margin: 0 0 6px; font-size: 12.5px; color: var(--muted); font-style: italic; }
header .close {
  border: 0; background: transparent; color: inherit; cursor: pointer;
  font-size: 22px; line-height: 1; padding: 2px 6px; border-radius: 6px;
}
.log { flex: 1; overflow-y: auto; padding: 14px 16px; background: var(--wash); }
.empty { color: var(--muted); font-size: 14px; }
.empty ul { padding-left: 18px; margin: 6px 0 0; }
.empty li { margin: 4px 0; }
.empty button {
  display: block; border: 0; background: none; padding: 0; color: var(--accent);
  text-decoration: underline; cursor: pointer; text-align: left; font-size: 14px;
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
.card .title { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2;
  overflow: hidden; font-weight: 650; font-size: 14px; }
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
.stance { display: block; margin: 0 0 4px; font-size: 11.5px; font-weight: 700;
  text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.stance.supports { color: #1d6b34; } .stance.contradicts { color: #a4161a; }
mark.mismatch { background: #ffc9c9; text-decoration: underline wavy #a4161a; }
mark.match { background: #d3f0da; }
.mismatches { margin: 6px 0 0; padding-left: 18px; font-size: 13px; }
.tools { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0 0; }
.tool { padding: 4px 10px; border: 1px solid var(--line); border-radius: 999px;
  background: var(--paper); color: var(--accent); font-size: 12.5px; font-weight: 600; cursor: pointer; }
.tool:disabled { opacity: .5; cursor: default; }
.report-form { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-end; }
.report-form .note { flex: 1 1 200px; min-height: 44px; padding: 6px 8px; border: 1px solid #b9c3cc;
  border-radius: 8px; }
.report-form .reason { flex-basis: 100%; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  header p { display: none; }
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

  /** One difference between a quote and its source, in the reader's words. */
  function change(d, t) {
    if (!d.source_text) return t.added(d.quote_text);
    if (!d.quote_text) return t.dropped(d.source_text);
    return t.changed(d.quote_text, d.source_text);
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

  class CiteqaChat extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this.pending = null;
      this.mode = "ask";
      this.history = []; // the answered questions, newest last, sent with each question
      this.transcript = []; // what the panel shows, kept in sessionStorage across reloads
    }

    get storageKey() {
      return `citeqa-conversation:${this.api}`;
    }

    save() {
      try {
        sessionStorage.setItem(
          this.storageKey,
          JSON.stringify({ history: this.history, transcript: this.transcript.slice(-MAX_SHOWN) })
        );
      } catch (error) {
        // storage full or disabled: the conversation still works, it is just not kept
      }
    }

    restore() {
      let saved = null;
      try {
        saved = JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
      } catch (error) {
        saved = null;
      }
      if (!saved || !Array.isArray(saved.transcript) || !saved.transcript.length) return;
      this.history = Array.isArray(saved.history) ? saved.history.slice(-MAX_TURNS) : [];
      this.transcript = saved.transcript;
      this.log.replaceChildren();
      for (const item of this.transcript) this.show(item);
    }

    /** One saved exchange: the question and the reply as it was rendered the first time. */
    show({ mode, question, body }) {
      const t = this.words(question);
      this.log.append(h("p", { class: "q", dir: "auto" }, question));
      const view =
        mode === "verify"
          ? this.verdictView(body)
          : mode === "cite"
            ? this.quoteView(body, t)
            : this.resultView(body, t);
      this.log.append(h("div", {}, view));
    }

    newConversation() {
      this.history = [];
      this.transcript = [];
      try {
        sessionStorage.removeItem(this.storageKey);
      } catch (error) {
        // nothing kept
      }
      this.log.replaceChildren(this.welcome());
      this.input.focus();
    }

    /** Keep an answered question for the next one (its answer and citation, if any). */
    remember(mode, question, body) {
      this.transcript.push({ mode, question, body });
      if (mode === "ask") {
        const answer = body.answer;
        this.history.push({
          question: body.resolved_question || question,
          answer: answer ? answer.text.slice(0, 2000) : null,
          citation: answer
            ? { doc_id: answer.citation.doc_id, char_start: answer.citation.char_start,
                char_end: answer.citation.char_end }
            : null,
        });
        this.history = this.history.slice(-MAX_TURNS);
      }
      this.save();
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

    link(path, language) {
      const url = new URL(path, this.api + "/");
      // the document page speaks the reader's language where it can (English and Chinese)
      if (VIEW_LANGUAGES.includes(language)) url.searchParams.set("lang", language);
      return url.href;
    }

    /** The widget's words in the language ``text`` (the reader's question) is written in. */
    words(text) {
      const code = readerLanguage(text || "");
      const t = WORDS[code] || WORDS.en;
      return { ...t, code, mismatch: (m) => t.mismatch(m, t.kinds[m.kind] || m.kind) };
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
        placeholder: "Ask a question…",
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
          (this.restart = h(
            "button",
            { class: "restart", type: "button", onclick: () => this.newConversation() },
            WORDS.en.newConversation
          )),
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
      this.restore();
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
          ? "Paste a claim to check…"
          : "Ask a question…";
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
      if (mode === "verify" && isQuoted(question)) mode = "cite"; // "check as a quote"
      if (this.pending) return;
      const t = this.words(question);
      if (this.panel.hidden) this.open();
      const empty = this.log.querySelector(".empty");
      if (empty) empty.remove();
      const bubble = retryOf ? retryOf.previousElementSibling : h("p", { class: "q", dir: "auto" }, question);
      if (!retryOf) this.log.append(bubble);
      const status = h(
        "p",
        { class: "status", role: "status" },
        h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
        mode === "verify" ? t.checking : t.searching
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
        const path = { verify: "/verify", cite: "/cite" }[mode] || "/ask";
        const payload =
          mode === "verify"
            ? { claim: question, top_k: 4 }
            : mode === "cite"
              ? { quote: unquoted(question), top_k: 3 }
              : { question, top_k: 5, history: this.history };
        const response = await fetch(this.api + path, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(payload),
          signal: controller.signal,
        });
        body = await response.json().catch(() => null);
        if (!response.ok) {
          const message = body && body.error && body.error.message;
          problem = message ? t.refused(message) : t.failed(response.status);
        }
      } catch (error) {
        problem =
          error && error.name === "AbortError"
            ? t.late(Math.round(this.timeout / 1000))
            : t.offline;
      } finally {
        clearTimeout(timer);
        this.pending = null;
        this.send.disabled = false;
        this.log.removeAttribute("aria-busy");
      }
      const view =
        mode === "verify"
          ? (b) => this.verdictView(b)
          : mode === "cite"
            ? (b) => this.quoteView(b, t)
            : (b) => this.resultView(b, t);
      slot.replaceChildren(problem ? this.errorView(problem, question, slot, mode, t) : view(body));
      if (!problem) this.remember(mode, question, body);
      this.reveal(bubble);
    }

    errorView(message, question, slot, mode, t) {
      return h(
        "div",
        { class: "a error", role: "alert" },
        h("p", { class: "headline" }, t.wrong),
        h("p", { class: "reason" }, message),
        h("button", { class: "retry", type: "button", onclick: () => this.ask(question, slot, mode) }, t.retry)
      );
    }

    resultView(body, t) {
      const answer = body.answer;
      const passages = body.passages || [];
      const assumed = body.assumed_subject
        ? h("p", { class: "assumed" }, t.assumed(body.assumed_subject))
        : null;
      if (!answer) {
        return h(
          "div",
          { class: "a noanswer" },
          assumed,
          h("p", { class: "headline" }, t.noAnswer),
          body.abstain_reason ? h("p", { class: "reason" }, body.abstain_reason) : null,
          passages.length ? h("p", { class: "label" }, t.nearest) : null,
          passages.slice(0, 3).map((passage) => this.passageCard(passage, t))
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
      // the answer, then its source: the sentence is shown once, in the source card, with
      // the answer marked in it
      return h(
        "div",
        { class: "a answer" },
        assumed,
        whole ? null : h("p", { class: "answer-text", lang: answer.language }, answer.text),
        h("p", { class: "meta" }, t.answered(answer.confidence, answer.language)),
        h("p", { class: "label" }, t.source),
        this.card({
          title: citation.title || citation.doc_id,
          source: citation.source || (source && source.source),
          published: citation.published,
          language: answer.language,
          quote: marked(answer.sentence, [[start, end]]),
          href: this.link(citation.url, t.code),
          cta: t.openQuote,
          t,
        }),
        this.tools(body, t),
        others.length ? h("p", { class: "label" }, t.alsoRelevant) : null,
        others.slice(0, 2).map((passage) => this.passageCard(passage, t))
      );
    }

    /** Copy the quote, copy the citation, copy a link to it, report a wrong answer. */
    tools(body, t) {
      const answer = body.answer;
      const citation = answer.citation;
      const link = this.link(citation.url);
      const cite = [
        `“${answer.sentence}”`,
        [citation.title || citation.doc_id, citation.publisher || citation.source || t.notStated,
          citation.published || t.notStated].join(" · "),
        citation.url_original,
        link,
      ].filter(Boolean).join("\n");
      const row = h("div", { class: "tools" });
      const copy = (label, text) => {
        const button = h("button", { type: "button", class: "tool" }, label);
        button.addEventListener("click", async () => {
          await navigator.clipboard.writeText(text);
          button.textContent = t.copied;
          setTimeout(() => { button.textContent = label; }, 1500);
        });
        return button;
      };
      row.append(
        copy(t.copyQuote, answer.sentence),
        copy(t.copyCitation, cite),
        copy(t.share, link),
        h("button", { type: "button", class: "tool report",
          onclick: (event) => this.reportForm(event.currentTarget, body, t) }, t.report)
      );
      return row;
    }

    /** A small form under the answer: the reader's note, sent to POST /feedback. */
    reportForm(button, body, t) {
      if (button.nextElementSibling && button.nextElementSibling.classList.contains("report-form")) return;
      const note = h("textarea", { class: "note", rows: "2", maxlength: "2000", "aria-label": t.reportNote,
        placeholder: t.reportNote });
      const status = h("p", { class: "reason", role: "status" });
      const answer = body.answer;
      const send = h("button", { type: "button", class: "tool", onclick: async () => {
        send.disabled = true;
        try {
          const response = await fetch(this.api + "/feedback", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              kind: "answer", question: body.question, answer: answer ? answer.text : null,
              citation: answer ? { doc_id: answer.citation.doc_id, char_start: answer.citation.char_start,
                char_end: answer.citation.char_end } : null,
              note: note.value.trim() || "(no note)", language: readerLanguage(body.question),
            }),
          });
          status.textContent = response.ok ? t.reported : t.reportFailed;
          if (response.ok) note.disabled = true;
          else send.disabled = false;
        } catch (error) {
          status.textContent = t.reportFailed;
          send.disabled = false;
        }
      } }, t.sendReport);
      button.after(h("div", { class: "report-form" }, note, send, status));
      note.focus();
    }

    verdictView(body) {
      const t = this.words(body.claim);
      const evidence = body.evidence || [];
      // the deciding sentence comes first; its stance is the verdict's, and only its
      // mismatches are the verdict's reasons (the other sentences are related)
      const deciding = body.verdict === "not_found" ? null : evidence[0];
      const mismatches = deciding && deciding.stance === "contradicts" ? deciding.mismatches : [];
      return h(
        "div",
        { class: "a claim" },
        h("p", { class: `verdict ${body.verdict}` }, t.verdicts[body.verdict] || body.verdict),
        h("p", { class: "meta" }, t.confidence(body.confidence)),
        mismatches.length
          ? h(
              "ul",
              { class: "mismatches" },
              mismatches.map((m) => h("li", {}, t.mismatch(m)))
            )
          : null,
        body.claim_review ? this.reviewTools(body, t) : null,
        evidence.length ? h("p", { class: "label" }, t.evidence) : null,
        evidence.map((item) => this.evidenceCard(item, t, item === deciding))
      );
    }

    /** Where a quote comes from: the source span, how it matches, and what differs. */
    quoteView(body, t) {
      const best = (body.matches || [])[0];
      const kinds = t.quoteKinds;
      if (!best) {
        return h("div", { class: "a quote noanswer" }, h("p", { class: "headline" }, kinds.none));
      }
      const quote = marked(best.source_text, best.differences
        .filter((d) => d.source_end > d.source_start)
        .map((d) => [d.source_start - best.char_start, d.source_end - best.char_start]));
      for (const node of quote) if (node instanceof HTMLElement) node.className = "mismatch";
      return h(
        "div",
        { class: "a quote" },
        h("p", { class: `verdict ${best.differences.length ? "contradicted" : "supported"}` },
          kinds[best.match] || best.match),
        best.differences.length
          ? h("ul", { class: "mismatches" }, best.differences.map((d) => h("li", {}, change(d, t))))
          : null,
        this.card({
          title: best.title || best.doc_id,
          source: best.publisher,
          published: best.published,
          language: null,
          quote,
          href: this.link(best.url, t.code),
          cta: t.openQuote,
          t,
        })
      );
    }

    /** Copy the check as schema.org ClaimReview JSON-LD, for a fact-check article. */
    reviewTools(body, t) {
      const label = "ClaimReview JSON-LD";
      const button = h("button", { type: "button", class: "tool" }, label);
      button.addEventListener("click", async () => {
        // "<" escaped: a claim holding </script> cannot end the tag early
        const json = JSON.stringify(body.claim_review, null, 2).replace(/</g, "\\u003c");
        await navigator.clipboard.writeText(`<script type="application/ld+json">\n${json}\n</script>`);
        button.textContent = t.copied;
        setTimeout(() => { button.textContent = label; }, 1500);
      });
      return h("div", { class: "tools" }, button);
    }

    evidenceCard(item, t, deciding) {
      const c = item.citation;
      // the deciding sentence marks the values that differ, or, supporting, those that agree
      const values = !deciding ? [] : item.stance === "contradicts" ? item.mismatches : item.matches || [];
      const quote = marked(item.quote, values.map((m) => [m.evidence_start, m.evidence_end]));
      const marking = item.stance === "contradicts" ? "mismatch" : "match";
      for (const node of quote) if (node instanceof HTMLElement) node.className = marking;
      const stance = deciding ? item.stance : "related";
      const card = this.card({
        title: c.title || c.doc_id,
        source: c.source,
        published: c.published,
        language: null,
        quote,
        href: this.link(c.url, t.code),
        cta: t.openQuote,
        t,
      });
      card.prepend(h("span", { class: `stance ${stance}` }, t.stances[stance] || stance));
      return card;
    }

    passageCard(passage, t) {
      const cut = excerpt(passage.text, passage.highlights);
      return this.card({
        title: passage.title || passage.doc_id,
        source: passage.source,
        published: passage.published,
        language: passage.language,
        quote: marked(cut.text, cut.ranges),
        href: this.link(passage.url, t.code),
        cta: t.openPassage,
        t,
      });
    }

    card({ title, source, published, language, quote, href, cta, t }) {
      const names = (t && t.languages) || WORDS.en.languages;
      const facts = [source, published, language ? names[language] : null].filter(Boolean).join(" · ");
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
