// The little JavaScript the pages need: picking films, live recommendations, dashboard refresh.
"use strict";
const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
function el(tag, attrs = {}, text = "") {
  const {dataset = {}, ...rest} = attrs;
  const node = Object.assign(document.createElement(tag), rest, text ? {textContent: text} : {});
  Object.assign(node.dataset, dataset);
  return node;
}

function setUpPicks(form) {
  const wanted = Number(form.dataset.picks), chosen = new Map();
  const list = form.querySelector("#chosen"), count = form.querySelector("#count");
  const submit = form.querySelector("#submit-picks");
  const render = () => {
    list.replaceChildren(...[...chosen].map(([id, title]) => {
      const li = el("li", {}, title);
      li.append(el("input", {type: "hidden", name: "movie_id", value: id}));
      const drop = el("button", {type: "button", className: "link"}, "remove");
      drop.onclick = () => { chosen.delete(id); render(); };
      li.append(drop);
      return li;
    }));
    count.textContent = chosen.size;
    submit.disabled = chosen.size !== wanted;
    form.querySelectorAll("button.pick").forEach(b => { b.disabled = chosen.has(b.dataset.movie) || chosen.size >= wanted; });
  };
  form.addEventListener("click", e => {
    const b = e.target.closest("button.pick");
    if (b && chosen.size < wanted) { chosen.set(b.dataset.movie, b.dataset.title); render(); }
  });
  const search = form.querySelector("#search"), matches = form.querySelector("#matches");
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = search.value.trim();
      if (!q) { matches.replaceChildren(); return; }
      const r = await fetch(`/films?q=${encodeURIComponent(q)}&k=6`);
      const body = r.ok ? await r.json() : {results: []};
      matches.replaceChildren(...body.results.map(f => {
        const li = el("li");
        li.append(el("span", {className: "title"}, f.title), el("span", {className: "meta"}, `${f.year || ""}`));
        li.append(el("button", {type: "button", className: "pick", dataset: {movie: String(f.movie_id), title: f.title}},
                      "Pick"));
        return li;
      }));
      render();
    }, 150);
  });
  render();
}

function setUpRecommendations(list) {
  const status = document.querySelector("#status");
  let last = "";
  const show = body => {
    status.textContent = {
      ready: "Up to date: based on every rating you gave.",
      non_personal: "Popular with everyone: allow personalisation under Privacy for films picked for you.",
    }[body.status] || "Waiting for your ratings to be folded in… meanwhile, what people who liked your films also liked.";
    status.className = `status ${body.status}`;
    list.dataset.status = body.status;
    const key = JSON.stringify(body.results.map(f => f.movie_id)) + body.status;
    if (key === last) return;
    last = key;
    list.replaceChildren(...body.results.map(f => {
      const li = el("li", {dataset: {movie: String(f.movie_id)}});
      li.append(el("a", {className: "title", href: `/film/${f.movie_id}`}, f.title),
                el("span", {className: "meta"}, `${f.year || ""}`), el("span", {className: "reason"}, f.reason));
      const stars = el("span", {className: "stars", ariaLabel: "rate"});
      for (let n = 1; n <= 5; n++) {
        const b = el("button", {type: "button", title: `${n} stars`, dataset: {stars: String(n)}}, "★".repeat(n));
        b.onclick = () => rate(f.movie_id, n);
        stars.append(b);
      }
      li.append(stars);
      return li;
    }));
  };
  const poll = async () => {
    try {
      const r = await fetch(list.dataset.source, {headers: {Accept: "application/json"}});
      if (r.ok) show(await r.json());
    } finally { setTimeout(poll, list.dataset.status === "waiting" ? 1000 : 4000); }
  };
  const rate = async (movie, stars) => {
    status.textContent = "Sending your rating…";
    list.dataset.status = "waiting";
    await fetch(list.dataset.rate, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
                                    body: JSON.stringify({movie_id: movie, rating: stars})});
  };
  poll();
}

function setUpDashboard(panels) {
  setInterval(async () => {
    const r = await fetch(panels.dataset.source);
    if (r.ok) panels.innerHTML = await r.text();
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const picks = document.querySelector("#picks");
  if (picks) setUpPicks(picks);
  const recommendations = document.querySelector("#recommendations");
  if (recommendations) setUpRecommendations(recommendations);
  const panels = document.querySelector("#panels");
  if (panels) setUpDashboard(panels);
});
