// The trials webview's entry (bundled by scripts/build.mjs to dist/webview.js and dist/webview.css).
import 'uplot/dist/uPlot.min.css';
import * as z from 'zod';
import './styles.css';
import { App } from './app';

// The page's Content-Security-Policy allows no eval: zod is told not to try compiling its parsers
// (the attempt is refused, reported as a CSP violation, and costs the first message a few ms).
z.config({ jitless: true });

const root = document.getElementById('app');
if (root) new App(root).start();
