// The playground: a chat that streams from /pg/chat/completions with the dashboard session.
(() => {
  const form = document.getElementById("pg-form");
  if (!form) return;
  const log = document.getElementById("pg-log");
  const input = document.getElementById("pg-input");
  const send = document.getElementById("pg-send");
  const history = [];

  const turn = (role, text) => {
    const row = document.createElement("div");
    row.className = "turn turn-" + role;
    const who = document.createElement("span");
    who.className = "role";
    who.textContent = role + ":";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    row.append(who, body);
    log.append(row);
    return body;
  };

  document.getElementById("pg-clear").addEventListener("click", () => {
    history.length = 0;
    log.textContent = "";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    turn("user", text);
    history.push({ role: "user", content: text });
    const out = turn("assistant", "");
    const system = document.getElementById("pg-system").value.trim();
    const messages = system ? [{ role: "system", content: system }, ...history] : [...history];
    send.disabled = true;
    let reply = "";
    try {
      const response = await fetch("/pg/chat/completions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "New-Api-User": form.dataset.userId },
        body: JSON.stringify({
          model: document.getElementById("pg-model").value,
          group: document.getElementById("pg-group").value,
          temperature: parseFloat(document.getElementById("pg-temp").value),
          stream: true,
          messages,
        }),
      });
      if (!response.ok) {
        const err = await response.json().catch(() => ({}));
        throw new Error((err.error && err.error.message) || response.statusText);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const lines = buffer.split("\n");
        buffer = lines.pop();
        for (const line of lines) {
          const data = line.startsWith("data:") ? line.slice(5).trim() : "";
          if (!data || data === "[DONE]") continue;
          try {
            const chunk = JSON.parse(data);
            const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
            if (delta && delta.content) {
              reply += delta.content;
              out.textContent = reply;
            }
          } catch (err) {
            // a partial or non-JSON line: ignore it
          }
        }
      }
      history.push({ role: "assistant", content: reply });
      out.parentElement.dataset.done = "1";
    } catch (err) {
      out.textContent = form.dataset.errorLabel + ": " + err.message;
      out.parentElement.classList.add("error");
    } finally {
      send.disabled = false;
    }
  });
})();
