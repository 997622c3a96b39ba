// Scrolling: follow the answer while the reader is at the bottom, stop as soon as they scroll
// up (and offer a jump back), and load older messages when they reach the top.

const NEAR = 80; // px from the bottom that still counts as "at the bottom"

export class Scroller {
  constructor(scroller, { jumpButton, older, olderButton, loadOlder }) {
    this.scroller = scroller;
    this.jumpButton = jumpButton;
    this.older = older;
    this.olderButton = olderButton;
    this.loadOlder = loadOlder;
    this.following = true;
    this.loading = false;
    this.anchor = scroller.scrollTop + scroller.clientHeight; // where following last left the view
    scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    jumpButton.addEventListener("click", () => this.toBottom({ smooth: true }));
    olderButton?.addEventListener("click", () => this.fetchOlder());
    if (older && "IntersectionObserver" in window) {
      new IntersectionObserver(
        (entries) => {
          if (entries.some((e) => e.isIntersecting)) this.fetchOlder();
        },
        { root: scroller, rootMargin: "200px 0px 0px 0px" },
      ).observe(older);
    }
    // Content grows (streaming, images of code blocks, …): keep following if we were.
    new ResizeObserver(() => this.afterChange()).observe(scroller.querySelector(".messages"));
    this.toBottom();
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR;
  }

  // The bottom edge of the view, in the content's coordinates.
  viewBottom() {
    return this.scroller.scrollTop + this.scroller.clientHeight;
  }

  // Only the reader moving the view's bottom edge up, by more than NEAR since it last followed,
  // stops following: not the distance to the bottom. A scroll event is dispatched at the next
  // frame, before the ResizeObserver of that frame, and things happen in between: on a phone the
  // composer shrinks once a message is sent, so the scroller grows and its scrollTop is clamped
  // (the edge stays where it was), and the content grows (the sent message, an answer's last
  // render). Neither is the reader scrolling away, and neither may stop the follow.
  onScroll() {
    const bottom = this.viewBottom();
    if (this.atBottom()) this.following = true;
    else if (this.following && this.anchor - bottom > NEAR) this.following = false;
    if (this.following) this.anchor = Math.max(this.anchor, bottom);
    else this.anchor = bottom;
    // Still following but short of the bottom: the ResizeObserver of the new content scrolls.
    this.jumpButton.hidden = this.following;
  }

  afterChange() {
    if (this.following) this.toBottom();
    else this.jumpButton.hidden = false;
  }

  toBottom({ smooth = false } = {}) {
    this.following = true;
    this.jumpButton.hidden = true;
    this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    this.anchor = this.viewBottom();
  }

  async fetchOlder() {
    if (this.loading || !this.older || this.older.hidden) return;
    this.loading = true;
    const before = this.scroller.scrollHeight - this.scroller.scrollTop;
    try {
      const more = await this.loadOlder();
      this.older.hidden = !more;
      // Keep the message the reader was looking at where it was.
      this.scroller.scrollTop = this.scroller.scrollHeight - before;
    } finally {
      this.loading = false;
    }
  }
}
