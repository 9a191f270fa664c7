/** Hyperparameter importances as horizontal bars (HTML, so screen readers read the figures). */
import { h, setAttr, setText } from '../dom';
import type { Model, Topic } from '../model';
import type { View } from '../scheduler';

export class ImportancesView implements View {
  readonly name = 'importances';
  readonly topics: readonly Topic[] = ['importances', 'theme'];
  readonly element: HTMLElement;
  private readonly list = h('ol', { class: 'bars', 'data-chart': 'importances' });
  private readonly note = h('p', { class: 'legend' });

  constructor(private readonly model: Model) {
    this.element = h(
      'section',
      { class: 'panel', id: 'importances', 'aria-labelledby': 'importances-title' },
      h('h2', { id: 'importances-title' }, 'Hyperparameter importance'),
      this.list,
      this.note,
    );
    setText(this.note, 'Waiting for finished trials…');
  }

  render(): void {
    const msg = this.model.importances;
    if (!msg) return;
    const items = msg.items;
    const max = items.reduce((m, i) => Math.max(m, i.importance), 0);
    const children = items.map((item) => {
      const bar = h('span', { class: 'bar' });
      bar.style.width = `${max > 0 ? (item.importance / max) * 100 : 0}%`;
      const pct = `${(item.importance * 100).toFixed(item.importance < 0.1 ? 1 : 0)}%`;
      return h(
        'li',
        { 'data-param': item.param, title: `score ${item.score.toPrecision(3)}` },
        h('span', { class: 'bar-label' }, item.param),
        h('span', { class: 'bar-track' }, bar),
        h('span', { class: 'bar-value' }, pct),
      );
    });
    this.list.replaceChildren(...children);
    setAttr(this.list, 'data-bars', items.length);
    setAttr(this.list, 'aria-label', `Importance by ${msg.method === 'ped-anova' ? 'PED-ANOVA' : msg.method}`);
    setText(this.note, msg.note ?? `${msg.method} over ${msg.trials} trials`);
  }
}
