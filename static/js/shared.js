// A share link's read-only page: the shared behaviour of every page, and the replies' math
// drawn by KaTeX as on the chat page (the HTML itself is rendered by the server).

import "./common.js";
import { renderMath } from "./math.js";

const list = document.getElementById("messages");
if (list) renderMath(list);
