// The board game (four in a row) drawn from its one room-level entity: `r0c0` … `r5c6`, row 0
// at the bottom, and `turn`; a click on a column sends the game's `drop {column}` message
// (refusals, such as "not your turn", show under the chat).

const ROWS = 6;
const COLUMNS = 7;

export function boardView(room, page, el) {
  const cells = [];
  el.replaceChildren();
  for (let row = ROWS - 1; row >= 0; row--) {
    for (let column = 0; column < COLUMNS; column++) {
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.row = row;
      cell.dataset.column = column;
      cell.onclick = () => drop(column);
      el.append(cell);
      cells.push(cell);
    }
  }
  const view = { drawn: 0, turn: null, stop, last: [] };

  async function drop(column) {
    const error = document.getElementById("room-error");
    error.textContent = "";
    try {
      await page.client.send("drop", { column });
    } catch (e) {
      error.textContent = `${e.code}: ${e.reason}`;
    }
  }

  const off = room.onSnapshot(({ entities }) => {
    const board = [...entities.values()].find((e) => e.kind === "board");
    if (!board) return;
    for (const cell of cells) cell.dataset.disc = board[`r${cell.dataset.row}c${cell.dataset.column}`];
    view.turn = board.turn;
    view.drawn = cells.filter((c) => c.dataset.disc !== "empty").length;
    view.last = [board];
    document.getElementById("room-state").textContent = board.winner !== "none" ? `winner: ${board.winner}` : `${board.turn} to play`;
  });

  function stop() { off(); }
  return view;
}
