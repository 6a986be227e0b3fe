// Channel editor: per-type help for key, base URL and "other"; unused fields hidden; the upstream's
// model list to pick from; a test button that shows the latency.
(() => {
  const texts = JSON.parse(document.getElementById("channel-type-help").textContent);
  const data = texts.types;
  const labels = texts.labels;
  const typeField = document.getElementById("id_type");
  if (!typeField) return;
  const fields = ["key", "base_url", "other", "openai_organization"];
  const channelId = (window.location.pathname.match(/\/channel\/(\d+)\/change\//) || [])[1] || "";
  const csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

  const rowOf = (name) => {
    const input = document.getElementById("id_" + name);
    return input ? input.closest(".form-row") || input.parentElement : null;
  };

  const noteFor = (name, cls) => {
    const input = document.getElementById("id_" + name);
    const row = rowOf(name);
    if (!input || !row) return null;
    let note = row.querySelector("." + cls);
    if (!note) {
      note = document.createElement("div");
      note.className = "help " + cls;
      note.id = cls + "-" + name;
      input.setAttribute("aria-describedby", note.id);
      (input.closest("div") || row).append(note);
    }
    return note;
  };

  const applyType = () => {
    const info = data[typeField.value] || { help: {}, hide: [], default_base_url: "" };
    for (const name of fields) {
      const row = rowOf(name);
      if (!row) continue;
      row.hidden = info.hide.includes(name) && !document.getElementById("id_" + name).value;
      const note = noteFor(name, "channel-help");
      if (note) note.textContent = info.help[name] || "";
    }
    const base = document.getElementById("id_base_url");
    if (base) base.placeholder = info.default_base_url || "";
  };

  const post = async (url, params) => {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf },
      body: new URLSearchParams(params),
    });
    return response.json();
  };

  const button = (text, id) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "button";
    b.id = id;
    b.textContent = text;
    b.style.margin = ".4rem .4rem .4rem 0";
    return b;
  };

  const addModelPicker = () => {
    const models = document.getElementById("id_models");
    if (!models) return;
    const box = document.createElement("div");
    box.className = "channel-models-picker";
    const fetchButton = button(labels.fetch, "channel-fetch-models");
    const status = document.createElement("span");
    status.id = "channel-fetch-status";
    status.setAttribute("role", "status");
    const label = document.createElement("label");
    label.htmlFor = "channel-upstream-models";
    label.textContent = labels.pick;
    label.hidden = true;
    const list = document.createElement("select");
    list.id = "channel-upstream-models";
    list.multiple = true;
    list.size = 8;
    list.hidden = true;
    const addButton = button(labels.add, "channel-add-models");
    addButton.hidden = true;
    box.append(fetchButton, status, label, list, addButton);
    (models.closest("div") || models.parentElement).append(box);

    fetchButton.addEventListener("click", async () => {
      status.textContent = labels.working;
      const answer = await post("/admin-channel/models", {
        type: typeField.value,
        base_url: (document.getElementById("id_base_url") || {}).value || "",
        key: (document.getElementById("id_key") || {}).value || "",
        id: channelId,
      }).catch((err) => ({ success: false, message: String(err) }));
      if (!answer.success) {
        status.textContent = labels.failed + ": " + answer.message;
        return;
      }
      const have = new Set(models.value.split(",").map((m) => m.trim()).filter(Boolean));
      list.textContent = "";
      for (const name of answer.data) {
        const option = new Option(name, name, false, !have.has(name));
        list.append(option);
      }
      status.textContent = String(answer.data.length);
      list.hidden = label.hidden = addButton.hidden = false;
    });

    addButton.addEventListener("click", () => {
      const have = models.value.split(",").map((m) => m.trim()).filter(Boolean);
      for (const option of list.selectedOptions) if (!have.includes(option.value)) have.push(option.value);
      models.value = have.join(",");
    });
  };

  const addTestButton = () => {
    const anchor = document.getElementById("id_test_model");
    if (!anchor || !channelId) return;
    const box = document.createElement("div");
    const testButton = button(labels.test, "channel-test");
    const result = document.createElement("span");
    result.id = "channel-test-result";
    result.setAttribute("role", "status");
    box.append(testButton, result);
    (anchor.closest("div") || anchor.parentElement).append(box);
    testButton.addEventListener("click", async () => {
      result.textContent = labels.working;
      const answer = await post(`/admin-channel/${channelId}/test`, { model: anchor.value }).catch((err) => ({
        success: false,
        message: String(err),
      }));
      result.textContent = answer.success
        ? labels.ok.replace("%(ms)s", answer.time_ms)
        : labels.failed + ": " + answer.message;
    });
  };

  typeField.addEventListener("change", applyType);
  applyType();
  addModelPicker();
  addTestButton();
})();
