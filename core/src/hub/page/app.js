// Lists the live streams (the full page with WHEP playback and chat replaces this).
async function refresh() {
  const list = document.getElementById("streams");
  const response = await fetch("/api/streams");
  const { streams } = await response.json();
  list.replaceChildren(...streams.map((s) => {
    const item = document.createElement("li");
    item.textContent = `${s.name} (${s.bitrate_kbps} kbit/s, ${s.viewers} viewers)`;
    return item;
  }));
}
refresh();
setInterval(refresh, 2000);
