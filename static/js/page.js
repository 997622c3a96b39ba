// Pages around the chat (compare, import): the sidebar, the shared strings, token confidence.
// Data comes from the page through json_script (#chat-config, #chat-strings).

import "./common.js";
import { setupConfidence } from "./confidence.js";
import { setStrings } from "./render.js";
import { setupSidebar } from "./sidebar.js";

export const strings = JSON.parse(document.getElementById("chat-strings").textContent);
export const config = JSON.parse(document.getElementById("chat-config").textContent);
setStrings(strings);
setupConfidence(strings);
setupSidebar(strings);
document.documentElement.dataset.ready = "";
