// Building the page: elements by id, new HTML and SVG elements from attributes and children.

const SVG_NS = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);

export const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// null, undefined and false mean "leave it out", so callers can write `cond ? x : null`.
const absent = (value) => value === null || value === undefined || value === false;

function setStyle(node, style) {
  for (const [key, value] of Object.entries(style)) node.style.setProperty(key, value);
}

function append(node, children) {
  for (const child of children.flat()) {
    if (absent(child)) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (absent(value)) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'style') setStyle(node, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  return append(node, children);
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (absent(value)) continue;
    if (key === 'style') setStyle(node, value);
    else node.setAttribute(key, value);
  }
  return append(node, children);
}
