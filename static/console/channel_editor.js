// Channel editor: explains key, base URL and "other" for the chosen type and hides unused fields.
(() => {
  const data = JSON.parse(document.getElementById("channel-type-help").textContent);
  const typeField = document.getElementById("id_type");
  if (!typeField) return;
  const fields = ["key", "base_url", "other", "openai_organization"];

  const rowOf = (name) => {
    const input = document.getElementById("id_" + name);
    return input ? input.closest(".form-row") || input.parentElement : null;
  };

  const helpOf = (name) => {
    const row = rowOf(name);
    if (!row) return null;
    let note = row.querySelector(".channel-type-help");
    if (!note) {
      note = document.createElement("div");
      note.className = "help channel-type-help";
      note.id = "channel-help-" + name;
      const input = document.getElementById("id_" + name);
      input.setAttribute("aria-describedby", note.id);
      (input.closest("div") || row).append(note);
    }
    return note;
  };

  const apply = () => {
    const info = data[typeField.value] || { help: {}, hide: [], default_base_url: "" };
    for (const name of fields) {
      const row = rowOf(name);
      if (!row) continue;
      const hidden = info.hide.includes(name) && !document.getElementById("id_" + name).value;
      row.hidden = hidden;
      const note = helpOf(name);
      if (note) note.textContent = info.help[name] || "";
    }
    const base = document.getElementById("id_base_url");
    if (base) base.placeholder = info.default_base_url || "";
  };

  typeField.addEventListener("change", apply);
  apply();
})();
